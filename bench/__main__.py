"""``make bench``: run every benchmark and print ratios against their baselines."""
from __future__ import annotations

import argparse

from bench import api_speed, celery_tail, email_delivery, memory, profile_pdf, rules, statement_cycle, track_load, trigger_latency


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--customers", type=int, default=500, help="statements in the cycle benchmark (2000 for the issue's scale)")
    parser.add_argument("--chromium", type=int, default=statement_cycle.CHROMIUM_STATEMENTS, metavar="N",
                        help="statements rendered by WeasyPrint and Chromium in the PDF-engine comparison (0: skip it)")
    parser.add_argument("--emails", type=int, default=2000, help="e-mails in the e-mail benchmark (20000 for the issue's scale)")
    parser.add_argument("--email-rounds", type=int, default=1, metavar="N",
                        help="run the e-mail baseline and engine N times in turn and keep the fastest of each (a busy machine)")
    parser.add_argument("--memory-sizes", type=_sizes, default=(10_000, 100_000), metavar="N,M",
                        help="messages in the runs whose peak memory is compared (default 10000,100000; 0 skips)")
    parser.add_argument("--memory-print", type=_sizes, default=(50, 500), metavar="N,M",
                        help="paper statements in the smaller memory check of print runs (default 50,500; 0 skips)")
    parser.add_argument("--rule-customers", type=int, default=200_000, help="generated customers in the segments and decisions benchmark (1000000 for the issue's scale)")
    parser.add_argument("--postgres", metavar="URL", help="also run the segments and decisions benchmark on this PostgreSQL database (its tables are replaced)")
    parser.add_argument("--track-seconds", type=int, default=8, metavar="S",
                        help="seconds of wrk load per endpoint in the open/click load test (0 skips it)")
    parser.add_argument("--events", type=int, default=200, help="payment.received events in the trigger latency benchmark (0 skips it)")
    parser.add_argument("--profile", type=int, default=50, metavar="N",
                        help="statements rendered under cProfile for the table of where WeasyPrint's time goes (0 skips it)")
    parser.add_argument("--api-requests", type=int, default=200, metavar="N",
                        help="requests of each kind in the API speed benchmark (real-time decision, on-demand e-mail and PDF; 0 skips it)")
    parser.add_argument("--celery-tail", type=int, default=60, metavar="N",
                        help="statements in the run whose Celery worker is killed mid-way, timed from the kill to completion (0 skips it)")
    args = parser.parse_args()
    statement_cycle.main(args.customers, chromium=min(args.chromium, args.customers))  # includes the Chromium comparison
    if args.profile:
        profile_pdf.main(args.profile)
    email_delivery.main(args.emails, rounds=max(1, args.email_rounds))
    if args.memory_sizes:
        memory.main(args.memory_sizes, args.memory_print)
    rules.main(args.rule_customers, args.postgres)
    if args.track_seconds:
        track_load.main(seconds=args.track_seconds)
    if args.events:
        trigger_latency.main(args.events)
    if args.api_requests:
        api_speed.main(args.api_requests)
    if args.celery_tail:
        celery_tail.main(args.celery_tail, args.postgres or celery_tail.ADMIN_URL)


def _sizes(text: str) -> tuple[int, ...]:
    """``"10000,100000"`` -> (10000, 100000); ``"0"`` -> () (skip)."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 10000,100000, got {text!r}") from None
    if sizes in ((), (0,)):
        return ()
    if len(sizes) < 2 or any(size < 1 for size in sizes) or list(sizes) != sorted(sizes):
        raise argparse.ArgumentTypeError(f"expected two or more increasing sizes like 10000,100000, got {text!r}")
    return sizes


if __name__ == "__main__":
    main()
