"""Computed fields: tiers and ABC codes match percentiles computed by hand, lifecycle
stages and RFM follow the thresholds of the settings, on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

from sqlalchemy import select

from ccm.models.feedback import ResponseEvent
from ccm.models import Customer, utcnow
from ccm.segments import refresh_computed
from ccm.models.segments import CustomerMetrics

from .conftest import REFERENCE, add_customer, months_before

POPULATION = 250


def spend_of(i: int) -> Decimal:
    return Decimal(((i * 37) % 101) // 2)  # 0 to 50, each about five times: ties at every boundary


def test_tiers_and_abc_match_hand_computed_percentiles(any_engine):
    with any_engine.db.session() as session:
        for i in range(POPULATION):
            # The spend is split over two periods of the window; an older period must not count.
            spend = spend_of(i)
            half = (spend / 2).quantize(Decimal("0.01"))
            add_customer(session, f"P{i:03d}", {REFERENCE: str(half), months_before(REFERENCE, 5): str(spend - half),
                                                months_before(REFERENCE, 12): "100000.00"})
    with any_engine.db.session() as session:
        result = refresh_computed(session, any_engine.settings)
        rows = session.execute(select(Customer.id, Customer.external_id, Customer.value_tier, Customer.abc_code)).all()

    # By hand: rank by spend (high first), ties by customer id; 1% / 5% / 20% of 250 customers.
    spends = {ext: spend_of(int(ext[1:])) for _, ext, _, _ in rows}
    ids = {ext: cid for cid, ext, _, _ in rows}
    ranked = sorted(spends, key=lambda ext: (-spends[ext], ids[ext]))
    vip, key, ordinary = math.floor(POPULATION * 0.01), math.floor(POPULATION * 0.05), math.floor(POPULATION * 0.20)
    assert (vip, key, ordinary) == (2, 12, 50)
    expected_tier, expected_abc, ahead, total = {}, {}, Decimal(0), sum(spends.values())
    for position, ext in enumerate(ranked, start=1):
        if spends[ext] <= 0:
            expected_tier[ext], expected_abc[ext] = "small", "C"
        else:
            expected_tier[ext] = "vip" if position <= vip else "key" if position <= key else "ordinary" if position <= ordinary else "small"
            expected_abc[ext] = "A" if ahead < total * Decimal("0.8") else "B" if ahead < total * Decimal("0.95") else "C"
        ahead += spends[ext]
    assert {ext: tier for _, ext, tier, _ in rows} == expected_tier
    assert {ext: abc for _, ext, _, abc in rows} == expected_abc
    assert result.tiers == {tier: list(expected_tier.values()).count(tier) for tier in ("vip", "key", "ordinary", "small")}
    # By hand: (i * 37) % 101 == 100 only for i = 30, 131, 232, the top spend (50) three times;
    # the vip cut (2 customers) splits the tie by customer id.
    assert [(ext, expected_tier[ext]) for ext in ranked[:3]] == [("P030", "vip"), ("P131", "vip"), ("P232", "key")]
    assert result.reference_period == REFERENCE


def test_lifecycle_stages_rfm_and_engagement(any_engine):
    recent = [months_before(REFERENCE, n) for n in range(3)]
    before = [months_before(REFERENCE, n) for n in range(3, 6)]
    old = [months_before(REFERENCE, n) for n in range(6, 14)]
    steady = {p: "50.00" for p in recent + before + old}
    with any_engine.db.session() as session:
        add_customer(session, "NEW", {REFERENCE: "10.00"})
        add_customer(session, "NEW-NO-FEED", {}, created=dt.datetime(2026, 10, 3))
        add_customer(session, "GONE", {p: "50.00" for p in old})
        add_customer(session, "FALLING", {**steady, **{p: "20.00" for p in recent}})
        add_customer(session, "RISING", {**steady, **{p: "80.00" for p in recent}})
        add_customer(session, "STEADY", steady)
        add_customer(session, "YOUNG", {p: "50.00" for p in recent + before})
        add_customer(session, "GONE-BUT-READING", {p: "50.00" for p in old})
        ids = dict(session.execute(select(Customer.external_id, Customer.id)).all())
        now = utcnow()
        # STEADY: 3 opens (2 each), a click (5), a payment (10) lately; one old open and a bot's click do not count.
        for n, (kind, days, bot) in enumerate([("opened", 1, False), ("opened", 2, False), ("opened", 3, False), ("clicked", 3, False),
                                               ("paid", 4, False), ("opened", 200, False), ("clicked", 1, True)]):
            session.add(ResponseEvent(event_key=f"s{n}", type=kind, source="test", customer_id=ids["STEADY"], bot=bot,
                                      occurred_at=now - dt.timedelta(days=days), recorded_at=now, data={}))
        # Twenty clicks: 100 points; and a payment: capped at 100.
        for n in range(20):
            session.add(ResponseEvent(event_key=f"r{n}", type="clicked", source="test", customer_id=ids["RISING"], bot=False,
                                      occurred_at=now - dt.timedelta(days=1), recorded_at=now, data={}))
        session.add(ResponseEvent(event_key="r-paid", type="paid", source="test", customer_id=ids["RISING"], bot=False,
                                  occurred_at=now - dt.timedelta(days=1), recorded_at=now, data={}))
        session.add(ResponseEvent(event_key="g1", type="opened", source="test", customer_id=ids["GONE-BUT-READING"], bot=False,
                                  occurred_at=now - dt.timedelta(days=20), recorded_at=now, data={}))
    with any_engine.db.session() as session:
        refresh_computed(session, any_engine.settings)
        last = dict(session.execute(select(Customer.external_id, Customer.last_response_at)).all())
        stages = dict(session.execute(select(Customer.external_id, Customer.lifecycle_stage)).all())
        scores = dict(session.execute(select(Customer.external_id, Customer.engagement_score)).all())
        rfm = dict(session.execute(select(Customer.external_id, Customer.rfm)).all())
        tenure = dict(session.execute(select(Customer.external_id, CustomerMetrics.tenure_months).join(CustomerMetrics)).all())
    assert stages == {
        "NEW": "acquisition", "NEW-NO-FEED": "acquisition", "GONE": "exit", "FALLING": "decline",
        "RISING": "growth", "STEADY": "maturity", "YOUNG": "growth", "GONE-BUT-READING": "decline",
    }
    assert tenure["NEW"] == 0 and tenure["NEW-NO-FEED"] == 1 and tenure["STEADY"] == 13
    # Engagement from recorded responses of the last 90 days, bots left out.
    assert scores["STEADY"] == 3 * 2 + 5 + 10 and scores["RISING"] == 100 and scores["GONE-BUT-READING"] == 2
    assert scores["GONE"] == 0 and scores["NEW-NO-FEED"] == 0
    assert last["STEADY"] == now - dt.timedelta(days=1) and last["GONE"] is None
    assert all(len(value) == 3 and set(value) <= set("12345") for value in rfm.values())
    assert rfm["RISING"][2] == "5" and rfm["NEW-NO-FEED"][0] == "1"


def test_refresh_without_any_feed(engine):
    with engine.db.session() as session:
        add_customer(session, "ALONE", {})
        result = refresh_computed(session, engine.settings)
    assert result.customers == 1 and result.tiers["small"] == 1


def test_segments_refresh_on_both_databases(any_engine):
    from ccm.segments import describe, get_segment, refresh, save_segment

    with any_engine.db.session() as session:
        for i in range(40):
            add_customer(session, f"Q{i:02d}", {REFERENCE: f"{i}.00"}, paperless=i % 2 == 0, attributes={"n": str(i)})
        save_segment(session, "top", 'tier in ("vip", "key", "ordinary")')
        save_segment(session, "top_paper", 'in_segment("top") and not paperless and attributes.n > 30')
    with any_engine.db.session() as session:
        result = refresh(session, any_engine.settings)
        assert result.counts == {"top": 8, "top_paper": 4}  # Q32..Q39; odd ones: Q33, Q35, Q37, Q39
        assert describe(session, get_segment(session, "top_paper"))["members"] == 4
