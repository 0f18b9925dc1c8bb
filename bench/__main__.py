"""``make bench``: run every benchmark and print ratios against their baselines."""
from __future__ import annotations

import argparse

from bench import statement_cycle


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--customers", type=int, default=60, help="statements in the cycle benchmark")
    args = parser.parse_args()
    statement_cycle.main(args.customers)


if __name__ == "__main__":
    main()
