"""``make bench``: run every benchmark and print ratios against their baselines."""
from __future__ import annotations

import argparse

from bench import chromium, email_delivery, rules, statement_cycle


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--customers", type=int, default=60, help="statements in the cycle and PDF-engine benchmarks")
    parser.add_argument("--emails", type=int, default=2000, help="e-mails in the e-mail benchmark")
    parser.add_argument("--rule-customers", type=int, default=200_000, help="generated customers in the segments and decisions benchmark (1000000 for the issue's scale)")
    parser.add_argument("--postgres", metavar="URL", help="also run the segments and decisions benchmark on this PostgreSQL database (its tables are replaced)")
    args = parser.parse_args()
    statement_cycle.main(args.customers)
    chromium.main(args.customers)
    email_delivery.main(args.emails)
    rules.main(args.rule_customers, args.postgres)


if __name__ == "__main__":
    main()
