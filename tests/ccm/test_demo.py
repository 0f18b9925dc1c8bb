"""Demo data: deterministic, realistic, and importing with exactly the planned rejects."""
from __future__ import annotations

import csv
import json
from decimal import Decimal

import phonenumbers
import pytest
from sqlalchemy import select

from ccm.db import Database
from ccm.demo import DEMO_BAD_CUSTOMERS, DEMO_BAD_STATEMENTS, write_demo_data
from ccm.imports import import_customers, import_feed
from ccm.models import Customer


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return write_demo_data(out, customers=500, cycle="2026-11", seed=7)


def test_demo_is_deterministic(demo, tmp_path):
    again = write_demo_data(tmp_path, customers=500, cycle="2026-11", seed=7)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in demo]
    other = write_demo_data(tmp_path / "other", customers=500, cycle="2026-11", seed=8)
    assert other[0].read_bytes() != demo[0].read_bytes()


def test_demo_customers_look_real(demo):
    with demo[0].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:-DEMO_BAD_CUSTOMERS]
    assert len(rows) == 500
    chinese = [row for row in rows if row["country"] == "CN"]
    assert 0.1 < len(chinese) / len(rows) < 0.3
    for row in rows:
        number = phonenumbers.parse(row["phone"])
        assert phonenumbers.is_valid_number(number), row["phone"]
        assert row["timezone"] == "Asia/Shanghai" if row["country"] == "CN" else row["timezone"].startswith("America/")
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in row["name"]) for row in chinese)
    assert {row["paperless"] for row in rows} == {"yes", "no"}
    assert any(not row["email"] for row in rows) and {"email", "sms", "print"} <= {row["preferred_channel"] for row in rows}


def test_demo_statements_balance(demo):
    statements = [json.loads(line) for line in demo[1].read_text(encoding="utf-8").splitlines()][:-DEMO_BAD_STATEMENTS]
    assert len(statements) == 500
    for s in statements:
        total = Decimal(s["opening_balance"]) + sum(Decimal(line["amount"]) for line in s["lines"])
        assert total == Decimal(s["closing_balance"])
        assert Decimal(s["amount_due"]) == max(total, Decimal(0))
        assert all(line["date"].startswith("2026-11-") for line in s["lines"])
    counts = [len(s["lines"]) for s in statements]
    assert min(counts) >= 3 and any(count >= 100 for count in counts)
    assert any(Decimal(s["amount_due"]) == 0 for s in statements)


def test_demo_imports_with_exactly_the_planned_rejects(demo, tmp_path):
    db = Database(f"sqlite:///{tmp_path}/demo.db")
    db.upgrade()
    customers = import_customers(db, demo[0], rejects_dir=tmp_path, progress=False)
    assert (customers.rows, customers.inserted, customers.rejected) == (503, 500, DEMO_BAD_CUSTOMERS)
    feed = import_feed(db, demo[1], rejects_dir=tmp_path, progress=False)
    assert (feed.rows, feed.inserted, feed.rejected) == (502, 500, DEMO_BAD_STATEMENTS)
    with open(customers.rejects_path, encoding="utf-8-sig") as fh:
        assert [(r["line"], r["field"]) for r in csv.DictReader(fh)] == [("502", "email"), ("503", "timezone"), ("504", "name")]
    with open(feed.rejects_path, encoding="utf-8-sig") as fh:
        got = [(r["line"], r["field"], r["reason"].split(":")[0]) for r in csv.DictReader(fh)]
    assert got == [("501", "customer_id", "unknown customer"), ("502", "closing_balance", "is not opening balance + lines")]
    with db.session() as session:
        keys = session.scalars(select(Customer.household_key)).all()
    assert None not in keys and len(set(keys)) < len(keys)  # some customers share a household
    db.dispose()


def test_demo_writes_twenty_thousand_customers(tmp_path):
    """How fast is for the benchmarks (make demo CUSTOMERS=20000 shows it); here, that it works."""
    customers, _ = write_demo_data(tmp_path, customers=20_000)
    with open(customers, encoding="utf-8") as fh:
        assert sum(1 for _ in fh) >= 20_000


def test_cli_demo_data(tmp_path):
    from app import create_app

    app = create_app({"ccm": {"database_url": f"sqlite:///{tmp_path}/c.db", "var_dir": str(tmp_path / "var")}})
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "data", "--customers", "20", "--cycle", "2027-01"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "demo" / "customers.csv").exists()
    first = json.loads((tmp_path / "var" / "demo" / "feed.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["period"] == "2027-01"
    result = runner.invoke(args=["demo", "data", "--cycle", "2027-13"])
    assert result.exit_code == 2 and "not a period" in result.output
    app.extensions["ccm"].close()


def test_demo_history_gives_the_rules_engine_trends_to_find(tmp_path):
    """With 12 months of history the demo has every lifecycle stage the decisions use."""
    from ccm.wiring import Engine
    from ccm.segments import refresh_computed

    customers, feed = write_demo_data(tmp_path / "demo", customers=120, history=12, seed=3)
    history = tmp_path / "demo" / "history.jsonl"
    periods = {json.loads(line)["period"] for line in history.read_text(encoding="utf-8").splitlines()}
    assert periods == {f"2025-{m:02d}" for m in range(11, 13)} | {f"2026-{m:02d}" for m in range(1, 11)}
    engine = Engine.from_settings({"ccm": {"database_url": f"sqlite:///{tmp_path}/ccm.db", "var_dir": str(tmp_path)}})
    engine.db.upgrade()
    import_customers(engine.db, customers, rejects_dir=tmp_path, progress=False)
    for path in (history, feed):
        assert import_feed(engine.db, path, rejects_dir=tmp_path, progress=False).inserted > 0
    with engine.db.session() as session:
        refresh_computed(session, engine.settings)
    with engine.db.session() as session:
        stages = {stage for stage in session.scalars(select(Customer.lifecycle_stage))}
        tiers = {tier for tier in session.scalars(select(Customer.value_tier))}
    assert {"acquisition", "growth", "maturity", "decline"} <= stages
    assert tiers == {"vip", "key", "ordinary", "small"}
    engine.close()
