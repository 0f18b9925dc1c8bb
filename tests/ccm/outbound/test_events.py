"""Each engine action emits its event, delivered by the active scheduler: a run completed,
a template approved, an unsubscribe (the one-click link), a bounce and a complaint (as the
callbacks record them). Payloads name things by id only."""
from __future__ import annotations

import email
import email.policy
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ccm import outbound
from ccm.authoring import get_version, save_draft, submit, approve
from ccm.authoring.store import sync_library
from ccm.feedback import unsubscribe
from ccm.feedback.events import Event, record
from ccm.imports import import_customers
from ccm.models import Message, utcnow
from ccm.models.webhooks import WebhookDelivery
from ccm.runs import service
from ccm.wiring import Engine

from shared_population import CAMPAIGN_CYCLE, feedback_settings, people, write_people

from .conftest import FAST

ALL = [name for name in outbound.EVENT_TYPES if name != "webhook.test"]
INSERT = "inserts/winback_offer.html"


@pytest.fixture
def deals(make_settings, tmp_path: Path, receiver):
    """An engine subscribed to every event (SQLite), with 60 customers and the weekly deals sent once."""
    engine = Engine.from_settings(feedback_settings(make_settings, tmp_path, webhooks=dict(FAST)))
    engine.db.upgrade()
    outbound.create_subscription(engine, "crm", receiver.url, ALL, actor="ada")
    import_customers(engine.db, write_people(tmp_path / "people.csv", people(6)), rejects_dir=tmp_path, progress=False)
    service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
    yield engine
    engine.close()


def _payloads(engine, event_type: str) -> list[dict]:
    with engine.db.reader() as session:
        return [p for p in session.scalars(select(WebhookDelivery.payload).where(WebhookDelivery.event_type == event_type))]


def test_a_completed_run_an_unsubscribe_a_bounce_and_a_complaint_emit_their_events(deals, tmp_path):
    [completed] = _payloads(deals, "run.completed")
    assert completed["data"] == {"run_id": completed["data"]["run_id"], "communication": "weekly-deals", "cycle": CAMPAIGN_CYCLE,
                                 "state": "completed"}
    mail = email.message_from_bytes(next((tmp_path / "var" / "maildir" / "new").iterdir()).read_bytes(), policy=email.policy.default)
    token = mail["List-Unsubscribe"].strip("<>").rsplit("/", 1)[1]
    unsubscribe(deals, token, confirm=True)
    [unsubscribed] = _payloads(deals, "customer.unsubscribed")
    with deals.db.session() as session:
        message = session.scalar(select(Message).where(Message.id == unsubscribed["data"]["message_id"]))
        assert unsubscribed["data"] == {"customer": message.customer.external_id, "channel": "email", "message_id": message.id,
                                        "run_id": message.run_id}
        record(session, Event("dsn-1", "bounced", "dsn", utcnow(), message_id=message.id, permanent=True), deals.settings)
        record(session, Event("fbl-1", "complained", "inbound", utcnow(), message_id=message.id), deals.settings)
    [bounced] = _payloads(deals, "message.bounced")
    assert bounced["data"]["permanent"] is True and bounced["data"]["message_id"] == message.id
    [complained] = _payloads(deals, "customer.complained")
    assert complained["data"]["customer"] == unsubscribed["data"]["customer"]
    assert "@" not in str([completed, unsubscribed, bounced, complained])  # no addresses


def test_an_approved_template_emits_its_event_and_the_scheduler_delivers_it(deals, receiver):
    with deals.db.session() as session:
        sync_library(session, deals.templates_dir)
        source = get_version(session, INSERT).source + "\n{# a change #}\n"
        saved = save_draft(session, deals.settings, INSERT, source, "mara")
        submit(session, deals.settings, INSERT, saved.version, "mara")
        approve(session, deals.settings, INSERT, saved.version, "olga")
    [approved] = _payloads(deals, "template.approved")
    assert approved["data"] == {"template": INSERT, "version": saved.version, "approved_by": "olga"}

    from ccm.scheduling.process import serve

    deals.settings["webhooks"]["sweep_seconds"] = 1
    stop = threading.Event()
    scheduler = threading.Thread(target=serve, args=(deals,), kwargs={"stop": stop})
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(b"template.approved" in r.body for r in receiver.received):
            stop.wait(0.05)
    finally:
        stop.set()
        scheduler.join()
    assert any(b"template.approved" in r.body for r in receiver.received)


def _campaign_to(make_settings, folder: Path, receiver, smtp_url: str, addresses: list[str], *, send: bool = True,
                 **delivery) -> Engine:
    """An engine subscribed to every event whose e-mail goes to the test SMTP server, with
    one e-mail customer per address, and the weekly deals sent once (unless not ``send``)."""
    engine = Engine.from_settings(feedback_settings(make_settings, folder, webhooks=dict(FAST), channels={"email": smtp_url},
                                                    delivery={"quiet_hours": "", **delivery}))
    engine.db.upgrade()
    outbound.create_subscription(engine, "crm", receiver.url, ALL, actor="ada")
    rows = [{**row, "email": address} for row, address in zip(people(len(addresses)), addresses)][:len(addresses)]
    import_customers(engine.db, write_people(folder / "people.csv", rows), rejects_dir=folder, progress=False)
    if send:
        service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
    return engine


def test_a_message_given_up_emits_message_dead_and_its_run_completes_undelivered(make_settings, tmp_path, receiver, smtp_server):
    server = smtp_server()
    engine = _campaign_to(make_settings, tmp_path, receiver, server.url(), ["e0@example.com", "reject@example.com", "e2@example.com"])
    try:
        [dead] = _payloads(engine, "message.dead")
        with engine.db.reader() as session:
            message = session.get(Message, dead["data"]["message_id"])
            assert (message.state, message.customer.external_id) == ("dead", "E001")
        assert dead["data"] == {"message_id": message.id, "run_id": message.run_id, "channel": "email", "customer": "E001"}
        [completed] = _payloads(engine, "run.completed")
        assert completed["data"]["state"] == "undelivered" and completed["data"]["run_id"] == message.run_id
        assert not _payloads(engine, "run.needs_attention")
        assert "@" not in str([dead, completed])  # the address the server echoed stays out
    finally:
        engine.close()


def test_a_run_paused_after_failures_in_a_row_emits_run_needs_attention(make_settings, tmp_path, receiver, smtp_server):
    server = smtp_server()
    engine = _campaign_to(make_settings, tmp_path, receiver, server.url(), ["busy@example.com"] * 4, pause_after_errors=2)
    try:
        [attention] = _payloads(engine, "run.needs_attention")
        assert attention["data"]["state"] == "paused" and attention["data"]["communication"] == "weekly-deals"
        assert not _payloads(engine, "run.completed") and not _payloads(engine, "message.dead")  # busy is retried, not given up
    finally:
        engine.close()


def test_a_run_stopped_by_an_error_emits_run_needs_attention(make_settings, tmp_path, receiver, smtp_server, monkeypatch):
    from ccm.runs import executor

    def broken(*_args, **_kwargs):
        raise RuntimeError("a fault in delivery")

    engine = _campaign_to(make_settings, tmp_path, receiver, smtp_server().url(), ["e0@example.com"], send=False)
    monkeypatch.setattr(executor, "_watch_inline", broken)
    try:
        with pytest.raises(RuntimeError):
            service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
        [attention] = _payloads(engine, "run.needs_attention")
        assert attention["data"]["state"] == "failed"
        assert not _payloads(engine, "run.completed")
    finally:
        engine.close()
