"""Customers through the API: upsert with the import's checks (422 naming the fields),
idempotent retries, search in pages, consents, preferences, suppressions and erasure."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ccm.models.feedback import ResponseEvent


@pytest.fixture
def client(app, key_for):
    """A test client and the headers of a key with the role service (customers:*)."""
    return app.test_client(), key_for("service")


def customer(n: int) -> dict:
    return {"name": f"Customer {n}", "email": f"c{n}@example.com", "phone": "+14155550101", "country": "US",
            "consent_email": {"service": True, "marketing": True}, "attributes": {"plan": "gold", "seats": n}}


def test_upsert_get_and_the_outcome(client):
    client, headers = client
    first = client.put("/api/v1/customers/C1", json=customer(1), headers=headers)
    assert first.status_code == 200 and first.json["outcome"] == "inserted"
    assert first.json["attributes"] == {"plan": "gold", "seats": 1}
    assert {(c["channel"], c["purpose"], c["granted"]) for c in first.json["consents"]} >= {("email", "marketing", True)}
    assert client.put("/api/v1/customers/C1", json=customer(1), headers=headers).json["outcome"] == "unchanged"
    assert client.put("/api/v1/customers/C1", json={**customer(1), "name": "Renamed"}, headers=headers).json["outcome"] == "updated"
    assert client.get("/api/v1/customers/C1", headers=headers).json["name"] == "Renamed"
    missing = client.get("/api/v1/customers/NOBODY", headers=headers)
    assert missing.status_code == 404 and missing.content_type == "application/problem+json"


@pytest.mark.parametrize("body, field", [
    ({"email": "x@example.com"}, "name"),  # required, by the schema
    ({"name": "A", "colour": "red"}, "colour"),  # unknown, by the schema
    ({"name": "A", "preferred_channel": "fax"}, "preferred_channel"),
    ({"name": "A", "email": "not an address"}, "email"),  # by the import's checks
    ({"name": "A", "phone": "12", "country": "US"}, "phone"),
    ({"name": "A", "country": "XX"}, "country"),
])
def test_invalid_customers_are_422_problem_details_naming_the_field(client, body, field):
    client, headers = client
    answer = client.put("/api/v1/customers/C1", json=body, headers=headers)
    assert answer.status_code == 422 and answer.content_type == "application/problem+json", answer.json
    assert answer.json["status"] == 422 and answer.json["title"] == "Unprocessable Content"
    assert answer.json["field"] == field and field in {error["field"] for error in answer.json["errors"]}
    assert client.get("/api/v1/customers/C1", headers=headers).status_code == 404


def test_a_retry_with_the_same_idempotency_key_is_replayed_and_other_content_is_409(client, engine):
    client, headers = client
    client.put("/api/v1/customers/C1", json=customer(1), headers=headers)
    keyed = {**headers, "Idempotency-Key": "change-1"}
    change = {"channel": "email", "purpose": "marketing", "granted": False}
    first = client.post("/api/v1/customers/C1/consents", json=change, headers=keyed)
    again = client.post("/api/v1/customers/C1/consents", json=change, headers=keyed)
    assert first.status_code == again.status_code == 200 and first.json == again.json
    assert first.json["changed"] == ["consent email/marketing"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    with engine.db.reader() as session:  # done once: one change in the customer's history
        assert session.scalar(select(func.count()).select_from(ResponseEvent).where(ResponseEvent.type == "preferences")) == 1
    other = client.post("/api/v1/customers/C1/consents", json={**change, "granted": True}, headers=keyed)
    assert other.status_code == 409 and other.content_type == "application/problem+json"
    assert other.json["field"] == "Idempotency-Key"


def test_search_walks_every_page(client):
    client, headers = client
    for n in range(23):
        client.put(f"/api/v1/customers/P{n:02}", json=customer(n), headers=headers)
    seen, cursor, pages = [], None, 0
    while True:
        answer = client.get("/api/v1/customers", query_string={"limit": 5, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert answer.status_code == 200
        seen += [item["external_id"] for item in answer.json["items"]]
        pages += 1
        cursor = answer.json["next_cursor"]
        if cursor is None:
            break
    assert pages == 5 and seen == [f"P{n:02}" for n in range(23)]
    found = client.get("/api/v1/customers", query_string={"q": "customer 1"}, headers=headers).json["items"]
    assert {item["external_id"] for item in found} == {f"P{n:02}" for n in (1, *range(10, 20))}
    for bad in ({"limit": 0}, {"limit": 201}, {"cursor": "bm90IGEgY3Vyc29y"}):
        answer = client.get("/api/v1/customers", query_string=bad, headers=headers)
        assert answer.status_code == 422 and answer.json["field"] in bad


def test_preferences_suppressions_and_erasure(client):
    client, headers = client
    client.put("/api/v1/customers/C1", json=customer(1), headers=headers)
    wanted = {"paperless": True, "preferred_channel": "email", "topics": [], "frequency": "weekly"}
    changed = client.put("/api/v1/customers/C1/preferences", json=wanted, headers=headers)
    assert changed.status_code == 200, changed.json
    assert client.get("/api/v1/customers/C1/preferences", headers=headers).json == wanted
    assert client.put("/api/v1/customers/C1/preferences", json={**wanted, "frequency": "hourly"}, headers=headers).status_code == 422
    assert client.get("/api/v1/customers/C1/suppressions", headers=headers).json == []
    assert client.post("/api/v1/customers/C1/suppressions", json={"channel": "sms"}, headers=headers).json["changed"] == ["suppressed sms"]
    assert [s["channel"] for s in client.get("/api/v1/customers/C1/suppressions", headers=headers).json] == ["sms"]
    lifted = client.delete("/api/v1/customers/C1/suppressions/sms", headers=headers)
    assert lifted.status_code == 200 and lifted.json["changed"] == ["lifted sms suppression (manual)"]
    assert client.get("/api/v1/customers/C1/suppressions", headers=headers).json == []
    assert client.delete("/api/v1/customers/C1/suppressions/sms", headers=headers).json["changed"] == []
    _suppress(client.application, "C1", "email", "unsubscribed")  # the customer's own choice
    kept = client.delete("/api/v1/customers/C1/suppressions/email", headers=headers)
    assert kept.status_code == 409 and kept.json["field"] == "channel" and "only their consent" in kept.json["detail"]
    erased = client.delete("/api/v1/customers/C1", headers=headers)
    assert erased.status_code == 200 and erased.json["erased"]
    assert client.get("/api/v1/customers/C1", headers=headers).status_code == 404


def _suppress(app, external_id: str, channel: str, reason: str) -> None:
    from ccm.feedback.events import suppress
    from ccm.models import Customer
    from sqlalchemy import select

    engine = app.extensions["ccm"]
    with engine.db.session() as session:
        customer = session.scalar(select(Customer).where(Customer.external_id == external_id))
        suppress(session, channel, customer.email if channel == "email" else customer.phone, reason, "test")
