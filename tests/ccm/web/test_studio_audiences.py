"""The studio's audiences: the rule checked as it is typed (the error at its position, or
the live count and a sample), segments saved and refreshed (audited), the count over time,
and the audience page whose numbers are the engine's computed fields, with the moves
between tiers and stages since the period before."""
from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from ccm.imports import import_customers
from ccm.models import Customer, FeedRecord
from ccm.models.authoring import AuditLog
from ccm.models.segments import CustomerMetrics, SegmentCount
from ccm.segments import audience_overview, live_count, refresh_computed, wait_refresh
from ccm.segments.computed import STAGES, TIERS
from ccm.segments.history import customer_history
from shared_population import people, write_people

CHECK = "/console/segments/check"


def spend(engine, period: str, amounts: dict[str, int]) -> None:
    """Charges of ``period`` for the customers named by external id."""
    with engine.db.session() as session:
        ids = dict(session.execute(select(Customer.external_id, Customer.id)).all())
        for external_id, amount in amounts.items():
            session.add(FeedRecord(
                account=f"A-{external_id}", customer_id=ids[external_id], period=period, opening_balance=Decimal(0),
                closing_balance=Decimal(amount), amount_due=Decimal(amount), due_date=dt.date(2026, 12, 15), currency="USD",
                total_debits=Decimal(amount), source_file="-", source_line=1, row_hash="-"))


@pytest.fixture
def population(engine, tmp_path):
    """30 customers (shared_population) with charges in October; computed fields refreshed."""
    import_customers(engine.db, write_people(tmp_path / "people.csv", people(20)), rejects_dir=tmp_path, progress=False)
    spend(engine, "2026-10", {f"E{i:03d}": 10 * (i + 1) for i in range(20)})
    with engine.db.session() as session:
        refresh_computed(session, engine.settings)
    return engine


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def test_the_check_shows_an_error_with_a_caret_at_its_position(console_as, population):
    client, csrf = console_as("marketer")
    rule = 'tier == "vip" and spendd > 10'
    answer = client.post(CHECK, data={"expression": rule, "csrf_token": csrf}, headers={"HX-Request": "true", "X-CSRFToken": csrf})
    assert answer.status_code == 200
    fragment = answer.get_data(as_text=True)
    assert "spendd" in fragment and 'role="alert"' in fragment
    column = rule.index("spendd") + 1
    assert f"column {column}" in fragment
    caret = re.search(r'<pre class="caret"[^>]*>(.*?)</pre>', fragment, re.S).group(1)
    line, pointer = html.unescape(caret).split("\n")
    assert line == rule and pointer == " " * (column - 1) + "^"


def test_the_check_counts_and_samples_the_members(console_as, population, engine):
    client, csrf = console_as("marketer")
    fragment = client.post(CHECK, data={"expression": 'tier in ["vip", "key"]', "csrf_token": csrf}).get_data(as_text=True)
    with engine.db.reader() as session:
        expected = session.scalar(select(func.count()).select_from(Customer).where(Customer.value_tier.in_(["vip", "key"])))
        names = session.scalars(select(Customer.name).where(Customer.value_tier.in_(["vip", "key"]))).all()
    assert expected > 0
    assert re.search(rf"\b{expected} customers? now", _text(fragment))
    assert all(f"<bdi>{name}</bdi>" in fragment for name in names)
    everyone = client.post(CHECK, data={"expression": "true", "csrf_token": csrf}).get_data(as_text=True)
    assert "30 customers now" in _text(everyone)
    assert everyone.count("<bdi>") == 20  # a sample, at most 20


def test_counts_are_capped_and_bounded_in_time(population, engine, monkeypatch):
    import ccm.segments.live as live

    monkeypatch.setattr(live, "PROGRESS_STEPS", 1)  # look at the clock at every step
    with engine.db.reader() as session:
        capped = live_count(session, "true", cap=5)
        assert (capped.count, capped.capped, capped.estimate) == (5, True, False)
        slow = live_count(session, "true", timeout_ms=0)  # no time at all: the count is not finished
        assert slow.estimate and slow.count is None
        assert live_count(session, 'tier == "vip"').count is not None  # the session is still usable


def test_the_capped_count_is_said(console_as, population, monkeypatch):
    import ccm.segments.live as live

    monkeypatch.setattr(live, "CAP", 10)
    monkeypatch.setattr(live.live_count, "__kwdefaults__", {**live.live_count.__kwdefaults__, "cap": 10})
    client, csrf = console_as("marketer")
    fragment = client.post(CHECK, data={"expression": "true", "csrf_token": csrf}).get_data(as_text=True)
    assert "More than 10 customers" in _text(fragment)


def test_a_marketer_saves_and_refreshes_a_segment_audited(console_as, population, engine):
    client, csrf = console_as("marketer")
    assert "New segment" in client.get("/console/segments").get_data(as_text=True)
    bad = client.post("/console/segments/save", data={"name": "big", "expression": "spendd > 1", "csrf_token": csrf})
    assert bad.status_code == 400 and "spendd" in bad.get_data(as_text=True) and "column 1" in bad.get_data(as_text=True)
    saved = client.post("/console/segments/save", data={"name": "big", "description": "Big spenders",
                                                         "expression": "spend > 150", "csrf_token": csrf}, follow_redirects=True)
    page = saved.get_data(as_text=True)
    assert "Segment created" in page and "Not refreshed yet" in page
    started = client.post("/console/segments/big/refresh", data={"csrf_token": csrf}, follow_redirects=True).get_data(as_text=True)
    assert "Refreshing in the background" in started  # never inside the request
    assert wait_refresh("big", timeout=60)
    state = client.get("/console/segments/big/refresh-state?running=1")
    assert state.headers.get("HX-Refresh") == "true"  # the polling page reloads once it has ended
    refreshed = client.get("/console/segments/big").get_data(as_text=True)
    assert "Refreshed: 5 members." in refreshed  # E015..E019 spent 160..200
    assert 'data-chart="line"' in refreshed and 'data-value="5"' in refreshed
    client.post("/console/segments/save", data={"name": "big", "description": "Big spenders", "expression": "spend > 180",
                                                "csrf_token": csrf})
    client.post("/console/segments/big/refresh", data={"csrf_token": csrf})
    assert wait_refresh("big", timeout=60)
    again = client.get("/console/segments/big").get_data(as_text=True)
    assert 'data-value="5"' in again and 'data-value="2"' in again  # the count over time, as a table the chart reads
    wrong = client.post("/console/segments/save", data={"name": "big", "expression": "spend >> 1", "csrf_token": csrf})
    assert wrong.status_code == 400 and "Segment big" in wrong.get_data(as_text=True)  # still the segment's page
    assert "spend &gt;&gt; 1" in wrong.get_data(as_text=True)  # what was typed is kept
    listing = client.get("/console/segments").get_data(as_text=True)
    assert "Big spenders" in listing and "spend &gt; 180" in listing and ">2</td>" in listing
    with engine.db.reader() as session:
        actions = session.execute(select(AuditLog.action, AuditLog.actor, AuditLog.object_name).order_by(AuditLog.id)).all()
        assert [a for a in actions if a[0].startswith("segment.")] == [
            ("segment.save", "marketer", "big"), ("segment.refresh", "marketer", "big"),
            ("segment.save", "marketer", "big"), ("segment.refresh", "marketer", "big")]
        assert session.scalar(select(func.count()).select_from(SegmentCount)) == 2


def test_a_viewer_sees_but_cannot_edit(console_as, population):
    client, csrf = console_as("viewer")
    assert client.get("/console/segments").status_code == 200
    assert client.get("/console/audiences").status_code == 200
    assert client.get("/console/segments/new").status_code == 403
    assert client.post(CHECK, data={"expression": "true", "csrf_token": csrf}).status_code == 403
    assert client.post("/console/segments/save", data={"name": "x", "expression": "true", "csrf_token": csrf}).status_code == 403
    assert client.post("/console/segments/x/refresh", data={"csrf_token": csrf}).status_code == 403


def _table(page: str, table_id: str) -> dict[str, list[str]]:
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        head = _text(re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(1)).strip()
        rows[head] = [_text(cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    return rows


def test_the_pyramid_shows_the_engines_computed_fields(console_as, population, engine):
    client, _ = console_as("marketer")
    page = client.get("/console/audiences").get_data(as_text=True)
    labels = {"vip": "VIP", "key": "key", "ordinary": "ordinary", "small": "small"}
    with engine.db.reader() as session:
        for column, table, values in ((Customer.value_tier, "groups-tier", TIERS), (Customer.abc_code, "groups-abc", "ABC"),
                                      (Customer.lifecycle_stage, "groups-stage", STAGES)):
            shown = _table(page, table)
            for value in values:
                count, total = session.execute(
                    select(func.count(), func.coalesce(func.sum(CustomerMetrics.spend), 0)).select_from(Customer)
                    .join(CustomerMetrics, CustomerMetrics.customer_id == Customer.id).where(column == value)).one()
                label = labels.get(value, value)
                assert shown[label][0] == str(count), (table, value)
                assert Decimal(shown[label][2].replace(",", "")) == Decimal(total), (table, value)
    assert sum(int(row[0]) for row in _table(page, "groups-tier").values()) == 30
    assert "Movements show after" in page  # one period only: no moves yet


def test_the_moves_since_the_period_before(console_as, population, engine, tmp_path):
    before = {c: t for c, t in _tiers(engine).items()}
    spend(engine, "2026-11", {f"E{i:03d}": 10 * (20 - i) for i in range(20)})  # the order turns round
    with engine.db.session() as session:
        refresh_computed(session, engine.settings)
    after = _tiers(engine)
    with engine.db.reader() as session:
        overview = audience_overview(session)
    assert overview["period"] == "2026-11" and overview["previous_period"] == "2026-10"
    expected: dict = {}
    for customer, tier in after.items():
        expected[(before[customer], tier)] = expected.get((before[customer], tier), 0) + 1
    moves = overview["tier"]["moves"]
    assert {(f, t): n for f, row in moves.items() for t, n in row.items() if n} == expected
    assert any(f != t for f, t in expected)  # someone moved
    with engine.db.session() as session:  # refreshing the same period again keeps the period before
        refresh_computed(session, engine.settings)
    with engine.db.reader() as session:
        assert audience_overview(session)["tier"]["moves"] == moves
    # the periods are rows of their own: a re-import that replaces the customers' attributes keeps them
    import_customers(engine.db, write_people(tmp_path / "again.csv", people(20)), rejects_dir=tmp_path, progress=False)
    with engine.db.reader() as session:
        assert audience_overview(session)["tier"]["moves"] == moves
        assert len(customer_history(session, session.scalar(select(Customer.id).where(Customer.external_id == "E000")))) == 2
    client, _ = console_as("viewer")
    page = client.get("/console/audiences").get_data(as_text=True)
    shown = _table(page, "moves-tier")
    assert shown["VIP"][TIERS.index("vip")] == str(moves["vip"]["vip"])
    assert shown["small"][TIERS.index("vip")] == str(moves["small"]["vip"])


def _tiers(engine) -> dict[str, str]:
    with engine.db.reader() as session:
        return dict(session.execute(select(Customer.external_id, Customer.value_tier)).all())


@pytest.mark.postgres
def test_moves_and_bounded_counts_on_postgresql(make_settings, tmp_path, postgres_url):
    from app import create_app

    app = create_app(make_settings(tmp_path, ccm={"database_url": postgres_url}))
    engine = app.extensions["ccm"]
    try:
        engine.db.upgrade()
        import_customers(engine.db, write_people(tmp_path / "people.csv", people(20)), rejects_dir=tmp_path, progress=False)
        for period, amounts in (("2026-10", {f"E{i:03d}": 10 * (i + 1) for i in range(20)}),
                                ("2026-11", {f"E{i:03d}": 10 * (20 - i) for i in range(20)})):
            spend(engine, period, amounts)
            with engine.db.session() as session:
                refresh_computed(session, engine.settings)
        with engine.db.reader() as session:
            overview = audience_overview(session)
            assert (overview["period"], overview["previous_period"]) == ("2026-11", "2026-10")
            assert sum(n for row in overview["tier"]["moves"].values() for n in row.values()) == 30
            assert sum(group["customers"] for group in overview["stage"]["groups"]) == 30
            assert live_count(session, "spend > 150").count == 20  # 210 each over the two periods
            capped = live_count(session, "true", cap=5)
            assert (capped.count, capped.capped) == (5, True)
            quick = live_count(session, "true", timeout_ms=1)  # under SET LOCAL statement_timeout
            assert quick.count == 30 or (quick.estimate and quick.count is not None)  # exact, or the planner's estimate
    finally:
        engine.close()
