"""Segments and decisions against hand-written baselines, on generated customers.

1. Refresh of all computed fields (``ccm segments refresh`` minus segments) beside the
   least a refresh must do: one hand-written GROUP BY of the spend per customer.
2. The audience count of a 5-condition segment compiled from the rule language beside the
   same selection in hand-written SQL.
3. A 10-rule decision compiled to Python beside the same rules as plain Python lambdas,
   per customer, over values loaded once (the loading is the same for both).

Customers have 12 monthly feed records each, and every other one six recent responses
(payments, clicks or opens: the engagement score). Memory stays flat: the refresh runs inside
the database and customer values are streamed in batches.
"""
from __future__ import annotations

import datetime as dt
import gc
import tempfile
import time
from pathlib import Path

PERIODS = [f"2026-{m:02d}" for m in range(1, 12)] + ["2025-12"]
SEGMENT = 'tier in ("vip", "key", "ordinary") and balance_due > 100 and not paperless and engagement >= 50 and attributes.plan == "gold"'
DECISION_RULES = [
    ('tier == "vip" and balance_due > 500', "premium"),
    ('lifecycle == "decline"', "winback"),
    ('lifecycle == "exit" and spend > 0', "lastcall"),
    ('abc == "A" and not paperless', "paperless-a"),
    ('attributes.plan == "gold" and engagement < 30', "gold-wake"),
    ("balance_due > 1000", "payment-plan"),
    ('country == "CN"', "cn"),
    ('tier == "key" and engagement >= 80', "key-loyal"),
    ("not paperless", "paperless"),
    ('starts_with(postal_code, "9")', "west"),
]


def _populate(db, customers: int) -> None:
    """Customers and 12 feed records each, generated inside the database (deterministic:
    every value is a function of the customer id)."""
    pg = db.engine.dialect.name == "postgresql"
    numbers = "generate_series(CAST(1 AS BIGINT), :n) AS n(i)" if pg else "n"
    prefix = "" if pg else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n) "
    plan = "CASE i % 4 WHEN 0 THEN 'gold' WHEN 1 THEN 'trial' ELSE 'basic' END"
    attributes = f"jsonb_build_object('plan', {plan})" if pg else f"json_object('plan', {plan})"
    external = "'B' || lpad(i::text, 8, '0')" if pg else "printf('B%08d', i)"
    paperless = "(i * 7) % 10 < 6" if pg else "CASE WHEN (i * 7) % 10 < 6 THEN 1 ELSE 0 END"
    customers_sql = (
        f"{prefix}INSERT INTO customers (id, external_id, name, locale, timezone, paperless, attributes, country, postal_code,"
        f" row_hash, created_at, updated_at) SELECT i, {external}, 'Customer ' || i, 'en_US', 'UTC', {paperless}, {attributes},"
        f" CASE WHEN i % 4 = 3 THEN 'CN' ELSE 'US' END, CAST(10000 + (i * 7919) % 90000 AS TEXT), '-',"
        f" '2024-01-01 00:00:00', '2024-01-01 00:00:00' FROM {numbers}"
    )
    if prefix:  # SQLite: WITH goes after INSERT ... only as a prefix of the SELECT
        customers_sql = customers_sql.replace(prefix, "").replace(" SELECT i,", f" {prefix}SELECT i,", 1)
    periods = " UNION ALL ".join(f"SELECT {n} AS n, '{period}' AS period" for n, period in enumerate(PERIODS))
    level = "CASE (CAST(c.id AS BIGINT) * 7919) % 6 WHEN 0 THEN 0 WHEN 1 THEN 5 WHEN 2 THEN 20 WHEN 3 THEN 60 WHEN 4 THEN 200 ELSE 900 END"
    trend = "CASE WHEN c.id % 5 = 0 AND p.n > 8 THEN 6 ELSE 10 END"
    spend = f"(({level}) * (50 + (CAST(c.id AS BIGINT) * 31 + p.n * 17) % 100) / 100 * ({trend}) / 10) * 10000"
    feed_sql = (
        "INSERT INTO feed_records (account, customer_id, period, opening_balance, closing_balance, amount_due, due_date,"
        " currency, lines, total_debits, total_credits, source_file, source_line, row_hash, imported_at)"
        f" SELECT 'A' || c.id, c.id, p.period, 0, {spend}, {spend}, '2026-12-01', 'USD', '[]', {spend}, 0, 'bench', 1, '-',"
        f" '2026-12-01 00:00:00' FROM customers c CROSS JOIN ({periods}) p"
    )
    if pg:
        feed_sql = feed_sql.replace("'[]', ", "'[]'::jsonb, ").replace("'2026-12-01', 'USD'", "DATE '2026-12-01', 'USD'")
        feed_sql = feed_sql.replace("'2026-12-01 00:00:00' FROM", "TIMESTAMP '2026-12-01 00:00:00' FROM")
        customers_sql = customers_sql.replace("'2024-01-01 00:00:00', '2024-01-01 00:00:00'", "TIMESTAMP '2024-01-01', TIMESTAMP '2024-01-01'")
    from sqlalchemy import text

    # Responses, so that the engagement score has something to add up: six in the last ten
    # days for every other customer, payments (engagement 60), clicks (30) or opens (12).
    kind = "CASE WHEN c.id % 7 < 2 THEN 'paid' WHEN c.id % 7 < 4 THEN 'clicked' ELSE 'opened' END"  # not tied to the spend level
    six = " UNION ALL ".join(f"SELECT {n} AS n" for n in range(6))
    at, no, empty = ("CAST(:at AS TIMESTAMP)", "false", "'{}'::jsonb") if pg else (":at", "0", "'{}'")
    events_sql = (
        "INSERT INTO response_events (event_key, type, source, channel, customer_id, occurred_at, recorded_at, bot, data)"
        f" SELECT 'bench-' || c.id || '-' || k.n, {kind}, 'api', 'email', c.id, {at}, {at}, {no}, {empty}"
        f" FROM customers c CROSS JOIN ({six}) k WHERE c.id % 2 = 0"
    )
    recent = (dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=10)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with db.engine.begin() as connection:
        connection.execute(text(customers_sql), {"n": customers})
        connection.execute(text(feed_sql))
        connection.execute(text(events_sql), {"at": recent})
        if pg:
            connection.exec_driver_sql("ANALYZE")


def _best(function, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def _hand_written_count(dialect: str) -> str:
    plan = "json_extract(c.attributes, '$.plan') = 'gold'" if dialect == "sqlite" else "c.attributes ->> 'plan' = 'gold'"
    paper = "c.paperless = 0" if dialect == "sqlite" else "NOT c.paperless"
    return (
        "SELECT count(*) FROM customers c WHERE c.value_tier IN ('vip', 'key', 'ordinary') "
        "AND (SELECT f.amount_due FROM feed_records f WHERE f.customer_id = c.id ORDER BY f.period DESC LIMIT 1) > 1000000 "
        f"AND {paper} AND c.engagement_score >= 50 AND {plan}"
    )


def bench_database(url: str, customers: int) -> None:
    from sqlalchemy import func, select, text

    from ccm.db import Database
    from ccm.models import Customer, FeedRecord
    from ccm.rules import Rule
    from ccm.schema import Base
    from ccm.segments import refresh_computed
    from ccm.settings import load_settings

    db = Database(url)
    db.create_file()
    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    dialect = db.engine.dialect.name
    start = time.perf_counter()
    _populate(db, customers)
    print(f"{dialect}: {customers:,} customers, {customers * len(PERIODS):,} feed records generated in {time.perf_counter() - start:.1f} s")
    settings = load_settings({})

    def refresh() -> None:
        with db.session() as session:
            refresh_computed(session, settings)

    def spend_only() -> None:
        with db.session() as session:
            session.execute(select(FeedRecord.customer_id, func.sum(FeedRecord.total_debits)).where(FeedRecord.period >= "2025-12").group_by(FeedRecord.customer_id)).all()

    engine_s, base_s = _best(refresh, 2), _best(spend_only, 2)
    _line("refresh of computed fields", engine_s, base_s, "one GROUP BY of spend")

    condition = Rule.parse(SEGMENT).to_sql(dialect)
    with db.session() as session:
        engine_count = session.scalar(select(func.count()).select_from(Customer).where(condition))
        base_count = session.scalar(text(_hand_written_count(dialect)))
    assert engine_count == base_count, (engine_count, base_count)

    def compiled_count() -> None:
        with db.session() as session:
            session.scalar(select(func.count()).select_from(Customer).where(condition))

    def hand_count() -> None:
        with db.session() as session:
            session.scalar(text(_hand_written_count(dialect)))

    _line(f"5-condition segment count ({engine_count:,} members)", _best(compiled_count), _best(hand_count), "hand-written SQL", goal=1.5)
    db.dispose()


DECISION_SAMPLE = 200_000  # customers whose values are held in memory for the decision loop


def bench_decision(url: str, customers: int) -> None:
    from ccm.db import Database
    from ccm.decisions import CompiledDecision, parse_spec
    from ccm.rules import load_values

    spec = parse_spec({"rules": [{"name": name, "when": when, "then": name} for when, name in DECISION_RULES], "default": "default"})
    decision = CompiledDecision("bench", 1, spec)
    db = Database(url)
    with db.session() as session:
        start = time.perf_counter()
        from ccm.models import Customer

        values = list(load_values(session, decision.parsed_rules, where=Customer.id <= DECISION_SAMPLE))
        loading = time.perf_counter() - start
    db.dispose()
    ids = [f"B{i:08d}" for i in range(len(values))]

    def number(v):
        return None if v is None else float(v)

    lambdas = [
        (lambda c: c["tier"] == "vip" and c["balance_due"] is not None and float(c["balance_due"]) > 500, "premium"),
        (lambda c: c["lifecycle"] == "decline", "winback"),
        (lambda c: c["lifecycle"] == "exit" and c["spend"] is not None and float(c["spend"]) > 0, "lastcall"),
        (lambda c: c["abc"] == "A" and not c["paperless"], "paperless-a"),
        (lambda c: c["attributes"].get("plan") == "gold" and c["engagement"] is not None and c["engagement"] < 30, "gold-wake"),
        (lambda c: c["balance_due"] is not None and float(c["balance_due"]) > 1000, "payment-plan"),
        (lambda c: c["country"] == "CN", "cn"),
        (lambda c: c["tier"] == "key" and c["engagement"] is not None and c["engagement"] >= 80, "key-loyal"),
        (lambda c: not c["paperless"], "paperless"),
        (lambda c: c["postal_code"] is not None and c["postal_code"].startswith("9"), "west"),
    ]

    def plain() -> list:
        chosen = []
        for c in values:
            for test, content in lambdas:
                if test(c):
                    chosen.append(content)
                    break
            else:
                chosen.append("default")
        return chosen

    def compiled() -> list:
        return [decision.decide(c, i).content for c, i in zip(values, ids)]

    assert plain() == compiled(), "the compiled decision and the lambdas disagree"
    count = len(values)
    engine_s, base_s = _best(compiled), _best(plain)
    print(f"  values of {count:,} customers loaded once in {loading:.2f} s ({loading / count * 1e6:.1f} µs/customer, the same for both)")
    _line("10-rule decision per customer", engine_s / count, base_s / count, "plain Python lambdas", unit="µs", scale=1e6, goal=3)


def _line(what: str, engine_s: float, base_s: float, baseline: str, *, unit: str = "s", scale: float = 1, goal: float | None = None) -> None:
    ratio = engine_s / base_s if base_s else float("inf")
    target = f" (goal {goal}x)" if goal else ""
    print(f"  {what}: {engine_s * scale:.3f} {unit} · {baseline}: {base_s * scale:.3f} {unit} · ratio {ratio:.2f}x{target}")


MEMORY_PROBE = """
import resource, sys, tempfile
from pathlib import Path
from ccm.db import Database
from ccm.schema import Base
from ccm.settings import load_settings
from ccm.segments import refresh_computed
from ccm.communications import ensure_built_in
from ccm.decisions import dry_run
from bench.rules import _populate
customers = int(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    db = Database(f"sqlite:///{Path(tmp) / 'memory.db'}")
    db.create_file()
    Base.metadata.create_all(db.engine)
    _populate(db, customers)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with db.session() as session:
        refresh_computed(session, load_settings({}))
        ensure_built_in(session)
    with db.session() as session:
        result = dry_run(session, "statement")
    assert result.audience == customers
    print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_memory(small: int, large: int) -> None:
    """Peak memory of refresh + decisions over the whole audience, at two sizes, each in a
    fresh process: flat means the larger run needs (nearly) no more memory."""
    import subprocess
    import sys

    peaks = {}
    for size in (small, large):
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(size)], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent.parent).stdout.split()
        peaks[size] = (int(out[1]) - int(out[0])) / 1024  # MB added by refresh + dry run, beyond loading the data
    print(f"memory: refresh and a dry run of every decision add {peaks[small]:.0f} MB for {small:,} customers, "
          f"{peaks[large]:.0f} MB for {large:,} ({peaks[large] / max(peaks[small], 1):.2f}x for {large // small}x the customers)")


def main(customers: int, postgres_url: str | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="ccm-bench-rules-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'rules.db'}"
        bench_database(url, customers)
        bench_decision(url, customers)
    if postgres_url:
        bench_database(postgres_url, customers)
        bench_decision(postgres_url, customers)
    bench_memory(max(customers // 8, 1000), max(customers // 2, 4000))
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory of the process: {peak:.0f} MB (the decision loop holds {DECISION_SAMPLE:,} customers' values)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("customers", type=int, nargs="?", default=200_000, help="generated customers (1000000 for the issue's scale)")
    parser.add_argument("--postgres", metavar="URL", help="also on this PostgreSQL database (its tables are replaced)")
    arguments = parser.parse_args()
    main(arguments.customers, arguments.postgres)
