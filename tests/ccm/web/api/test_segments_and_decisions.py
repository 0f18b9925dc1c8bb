"""Segments through the API (create, change, get, list in pages, count and sample now), and
decisions in real time: the same content as the batch chose, its trace, and the exposure
counted in the experiment's report."""
from __future__ import annotations

from ccm.feedback import communication_report


def test_segments_made_changed_counted_and_sampled(deals, key_for):
    app, engine = deals
    client, headers = app.test_client(), key_for("marketer")
    made = client.post("/api/v1/segments", json={"name": "sms-people", "expression": "missing(email)"}, headers=headers)
    assert made.status_code == 201, made.json
    assert made.json["version"] == 1 and made.json["outcome"] == "created"
    again = client.post("/api/v1/segments", json={"name": "sms-people", "expression": "true"}, headers=headers)
    assert again.status_code == 409
    bad = client.put("/api/v1/segments/sms-people", json={"expression": "tier = 'vip'"}, headers=headers)
    assert bad.status_code == 422 and bad.json["field"] == "expression"
    changed = client.put("/api/v1/segments/sms-people", json={"expression": made.json["expression"], "description": "SMS only"},
                         headers=headers)
    assert changed.status_code == 200 and changed.json["description"] == "SMS only"
    count = client.get("/api/v1/segments/sms-people/count", headers=headers).json
    sample = client.get("/api/v1/segments/sms-people/sample", query_string={"size": 3}, headers=headers).json["items"]
    assert count == {"count": 8, "capped": False, "estimate": False} and len(sample) == 3
    assert client.get("/api/v1/segments/nothing", headers=headers).status_code == 404
    for name in ("a-one", "a-two", "a-three"):
        client.post("/api/v1/segments", json={"name": name, "expression": "true"}, headers=headers)
    first = client.get("/api/v1/segments", query_string={"limit": 2}, headers=headers).json
    second = client.get("/api/v1/segments", query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=headers).json
    names = [s["name"] for s in first["items"] + second["items"]]
    assert names == sorted(names) and len(names) == 4 and second["next_cursor"] is None
    assert client.post("/api/v1/segments", json={"name": "x", "expression": "true"}, headers=key_for("viewer")).status_code == 403


def test_a_real_time_decision_is_the_batch_one_and_counts_as_an_exposure(deals, key_for):
    app, engine = deals
    client, headers = app.test_client(), key_for("marketer")
    from sqlalchemy import select

    from ccm.models import Customer, Message

    with engine.db.reader() as session:
        batch = {external_id: decisions["email.offer"] for external_id, decisions in session.execute(
            select(Customer.external_id, Message.decisions).join(Customer).where(Message.decisions.is_not(None)))
            if decisions and "email.offer" in decisions}
    assert batch
    for external_id, trace in list(batch.items())[:10]:
        answer = client.get(f"/api/v1/customers/{external_id}/decisions/deals/email.offer", headers=headers)
        assert answer.status_code == 200, answer.json
        assert answer.json["content"] == trace["content"] and answer.json["trace"]["variant"] == trace["variant"]
        assert answer.json["trace"]["experiment"] == "weekly-deals-offer" and "value_tier" in answer.json["customer"]
    assert client.get("/api/v1/customers/E000/decisions/deals/nothing", headers=headers).status_code == 404
    assert client.get("/api/v1/customers/NOBODY/decisions/deals/email.offer", headers=headers).status_code == 404
    with engine.db.reader() as session:
        report = communication_report(session, "deals", {"currency": "USD"})
    experiment = next(e for e in report.experiments if e.name == "weekly-deals-offer")
    assert sum(experiment.exposed.values()) == 10
    assert experiment.to_json()["exposed"] == experiment.exposed


def test_a_conversion_after_an_offer_shown_in_real_time_is_the_offers(deals, key_for):
    """Last touch: the e-mail went first, then the website showed the offer; the purchase
    after that is counted for the variant shown, in the experiment's report."""
    from ccm.feedback import create_token

    app, engine = deals
    client, headers = app.test_client(), key_for("marketer")
    events = {"Authorization": f"Bearer {create_token(engine, 'shop')}"}
    shown = {}
    for external_id in ("E001", "E002", "E003", "E004", "E005", "E006"):
        trace = client.get(f"/api/v1/customers/{external_id}/decisions/deals/email.offer", headers=headers).json["trace"]
        if trace["variant"] not in (None, "holdout"):
            shown[external_id] = trace["variant"]
    assert len(shown) >= 2
    (first, variant), (second, _) = list(shown.items())[:2]
    bought = client.post("/api/v1/events", json={"id": "order-1", "type": "conversion", "customer": first, "amount": "30.00",
                                                 "currency": "USD"}, headers=events)
    assert bought.status_code == 201 and bought.json["message_id"] is None
    outcome = client.get("/api/v1/events/order-1", headers=events).json
    assert outcome["communication"] == "weekly-deals" and outcome["message_id"] is None
    again = client.post("/api/v1/events", json={"id": "order-1b", "type": "conversion", "customer": first}, headers=events)
    assert again.status_code == 201  # the same customer twice: one customer converted
    named = client.post("/api/v1/events", json={"id": "order-2", "type": "conversion", "customer": second, "message_id":
                                                _last_message(engine, second)}, headers=events)
    assert named.status_code == 201 and named.json["message_id"] is not None  # a message named: that message's, as before
    report = client.get("/api/v1/reports/communications/deals/experiments/weekly-deals-offer", headers=key_for("viewer")).json
    assert report["exposed_converted"] == {variant: 1}, report
    assert sum(report["exposed"].values()) == 6


def _last_message(engine, external_id: str) -> int:
    from sqlalchemy import select

    from ccm.models import Customer, Message

    with engine.db.reader() as session:
        return session.scalar(select(Message.id).join(Customer).where(Customer.external_id == external_id).order_by(Message.id.desc()))
