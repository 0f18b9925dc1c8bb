"""Bounce and complaint reports read from a maildir, callbacks in a bad format, SMS keywords,
and the conversions API: validation, idempotency, attribution."""
from __future__ import annotations

import datetime as dt
import json
import mailbox

import pytest
from sqlalchemy import select

from channels.callback_events import InboundError, parse_events
from ccm.feedback import create_token
from ccm.feedback.events import attribute
from ccm.feedback.provider_events import keyword
from ccm.models.feedback import ResponseEvent
from ccm.models import Message, Suppression, utcnow

from .conftest import delivered, dsn, signed


def _arf(original_message_id: str) -> bytes:
    """A complaint from a feedback loop (RFC 5965), with the original message attached."""
    return f"""From: fbl@isp.example
Message-ID: <arf-1@isp.example>
Date: Mon, 30 Nov 2026 11:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

This is an abuse report.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: isp/1.0
Version: 1

--F
Content-Type: message/rfc822

Message-ID: {original_message_id}
Subject: This week's deals

Hello
--F--
""".replace("\n", "\r\n").encode()


def test_dsn_bounces_and_arf_complaints_from_a_maildir(campaign, tmp_path):
    app, engine, *_ = campaign
    mails = [sent for sent in delivered(engine, tmp_path / "var").values() if sent.channel == "email"]
    hard, soft, complained, late = mails[0], mails[1], mails[2], mails[3]
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn(hard.raw["Message-ID"], "5.1.1"))
    box.add(dsn(soft.raw["Message-ID"], "5.7.1"))  # refused by policy: not a dead mailbox
    box.add(dsn(late.raw["Message-ID"], "4.2.2", action="delayed"))  # it will probably arrive: nothing recorded
    box.add(_arf(complained.raw["Message-ID"]))
    box.add(dsn("<someone-elses@example.org>", "5.1.1"))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["feedback", "bounces", str(tmp_path / "bounces"), "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"recorded": 3, "duplicates": 0, "unknown": 1, "by_type": {"bounced": 2, "complained": 1}}
    again = runner.invoke(args=["feedback", "bounces", str(tmp_path / "bounces")])
    assert "nothing new" in again.output  # reports are marked seen
    with engine.db.session() as session:
        events = {e.message_id: e for e in session.scalars(select(ResponseEvent))}
        suppressed = {(s.address, s.reason) for s in session.scalars(select(Suppression))}
        customers = {m.id: m.customer for m in session.scalars(select(Message).where(Message.id.in_([hard.message_id, complained.message_id])))}
        consent = {(c.channel, c.purpose): c.granted for c in customers[complained.message_id].consents}
    assert events[hard.message_id].detail.startswith("hard bounce 5.1.1") and "example.com" not in events[hard.message_id].detail
    assert events[soft.message_id].detail.startswith("soft bounce 5.7.1") and late.message_id not in events
    assert suppressed == {(customers[hard.message_id].email, "hard_bounce"), (customers[complained.message_id].email, "complaint")}
    assert consent[("email", "marketing")] is False


@pytest.mark.parametrize(("text", "word"), [(" Stop. ", "STOP"), ("opt-out", "OPT OUT"), ("unsubscribe!!", "UNSUBSCRIBE"),
                                             ("help?", "HELP"), ("stop sending me bills please", "STOP SENDING ME BILLS PLEASE")])
def test_sms_keywords_are_read_loosely_but_only_whole(text, word):
    assert keyword(text) == word


@pytest.mark.parametrize(("payload", "problem"), [
    ({}, 'expected {"events": [...]}'),
    ({"events": [{"type": "reply"}]}, "event 1: id must be"),
    ({"events": [{"id": "x", "type": "bounce"}]}, "event 1: type must be one of"),
    ({"events": [{"id": "x", "type": "reply", "from": "+1"}]}, "event 1: a reply needs from and text"),
    ({"events": [{"id": "x", "type": "delivered", "message": "m", "at": "yesterday"}]}, "event 1: at must be an ISO 8601 time"),
])
def test_callbacks_in_a_bad_format_are_refused_naming_the_event(payload, problem):
    with pytest.raises(InboundError, match=problem.replace("[", r"\[").replace("]", r"\]").replace("{", r"\{").replace("}", r"\}")):
        parse_events(payload, "sms")


def test_a_bad_callback_is_a_400_and_an_unsigned_one_a_401(campaign):
    app, *_ = campaign
    client = app.test_client()
    body, headers = signed({"events": [{"id": "x", "type": "teleport"}]})
    assert client.post("/inbound/sms", data=body, headers=headers).status_code == 400
    assert client.post("/inbound/sms", data=body, headers={"Content-Type": "application/json"}).status_code == 401
    assert client.post("/inbound/fax", data=body, headers=headers).status_code == 404


def test_the_api_validates_and_is_idempotent(campaign):
    app, engine, *_ = campaign
    client = app.test_client()
    auth = {"Authorization": f"Bearer {create_token(engine, 'crm')}"}
    cases = [
        ({"id": "1", "type": "refund", "customer": "E000"}, 400, "type"),
        ({"id": "1", "type": "payment", "customer": "E000", "amount": "1,000.00", "currency": "USD"}, 400, "amount"),
        ({"id": "1", "type": "payment", "customer": "E000", "amount": "10"}, 400, "currency"),
        ({"id": "1", "type": "payment", "customer": "E000", "amount": "10.001", "currency": "USD"}, 400, "amount"),
        ({"id": "1", "type": "payment", "customer": "E000", "colour": "red"}, 400, "colour"),
        ({"id": "1", "type": "payment", "customer": "NOBODY"}, 422, "customer"),
        ({"id": "1", "type": "payment", "customer": "E000", "message_id": 999999}, 422, "message_id"),
    ]
    for body, status, field in cases:
        response = client.post("/api/v1/events", json=body, headers=auth)
        assert (response.status_code, response.json["field"]) == (status, field), body
    assert client.post("/api/v1/events", data="not json", headers=auth).status_code == 400
    body = {"id": "ok-1", "type": "conversion", "customer": "E000", "amount": "12.50", "currency": "USD"}
    first, second = (client.post("/api/v1/events", json=body, headers=auth) for _ in range(2))
    assert first.status_code == 201 and first.json["recorded"] and first.json["message_id"] is not None
    assert second.status_code == 200 and second.json["duplicate"]
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/events" in spec["paths"]


def test_a_revoked_token_is_refused(campaign):
    app, engine, *_ = campaign
    client = app.test_client()
    token = create_token(engine, "old")
    assert app.test_cli_runner().invoke(args=["tokens", "revoke", "old"]).exit_code == 0
    response = client.post("/api/v1/events", json={}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_conversions_are_attributed_to_the_last_message_within_the_window(campaign):
    app, engine, *_ = campaign
    with engine.db.session() as session:
        message = session.scalars(select(Message).where(Message.state == "sent")).first()
        sent_at = message.sent_at
        assert attribute(session, message.customer_id, sent_at + dt.timedelta(days=6), 7, marketing=True).id == message.id
        assert attribute(session, message.customer_id, sent_at + dt.timedelta(days=8), 7, marketing=True) is None
        assert attribute(session, message.customer_id, sent_at - dt.timedelta(hours=1), 7, marketing=True) is None
        # A payment answers a statement or a bill, not an offer: no service message, no attribution.
        assert attribute(session, message.customer_id, sent_at + dt.timedelta(days=1), 7, marketing=False) is None
    assert utcnow() >= sent_at


def test_an_sms_failure_suppresses_the_number_and_stop_matches_any_spelling_of_it(campaign):
    app, engine, *_ = campaign
    client = app.test_client()
    texts = [sent for sent in delivered(engine, engine.var_dir).values() if sent.channel == "sms"]
    failing = texts[0]
    body, headers = signed({"events": [
        {"id": "f-1", "type": "failed", "message": f"m{failing.message_id:09d}-x", "permanent": True},  # a bad ref: unknown
        {"id": "f-2", "type": "failed", "message": _ref(engine, failing.message_id), "permanent": True, "reason": "number gone"},
        {"id": "s-1", "type": "reply", "from": "1 (415) 555-0001", "text": "stop"},  # S001, written another way
    ]})
    answer = client.post("/inbound/sms", data=body, headers=headers).json
    assert answer["recorded"] == 2 and answer["unknown"] == 1
    with engine.db.session() as session:
        suppressed = {(s.channel, s.address, s.reason) for s in session.scalars(select(Suppression))}
        phone = session.get(Message, failing.message_id).customer.phone
    assert suppressed == {("sms", phone, "hard_bounce"), ("sms", "+14155550001", "stop")}  # numbers only, no e-mail address


def _ref(engine, message_id):
    from ccm.runs.compose import file_id

    with engine.db.session() as session:
        return file_id(session.get(Message, message_id))
