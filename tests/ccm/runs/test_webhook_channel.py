"""The webhook channel in a run: statements of the customers who agreed go as signed JSON to
another system on loopback; a 503 is retried and a 400 falls to the communication's
fallback (paper), so no message is lost; a policy naming an unset webhook stops the run
before anything is planned."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from ccm.communications import ensure_built_in
from ccm.feedback import change_consent
from ccm.models import Communication, Customer, Message
from ccm.runs import PlanError, service

CYCLE = "2026-11"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_FIRST = {"order": [{"channel": "webhook"}, {"channel": "print"}, {"channel": "email"}]}


class Receiver(BaseHTTPRequestHandler):
    """A CRM on loopback: answers each message by what the test set for its customer
    (a list of status codes, used in turn; 200 when none is left)."""

    answers: dict[str, list[int]] = {}
    received: list[tuple[dict, dict]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        payload = Webhook(SECRET).verify(body, headers)  # raises on a bad signature: the test sees a 500
        type(self).received.append((payload, headers))
        queue = type(self).answers.get(payload["to"], [])
        status = queue.pop(0) if queue else 200
        answer = json.dumps({"id": f"crm-{len(type(self).received)}"} if status == 200 else {"error": "no"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    Receiver.answers, Receiver.received = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"webhook+http://127.0.0.1:{server.server_address[1]}/ccm/messages?secret={SECRET}&timeout=5"
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(make_settings, tmp_path, receiver):
    return make_settings(tmp_path, channels={"webhook": receiver}, ccm={"max_attempts": 3},
                         delivery={"quiet_hours": "", "wait_seconds": 0, "retry_base_seconds": 1, "retry_cap_seconds": 1})


def _webhook_first(engine, *customers: str) -> None:
    for external_id in customers:
        change_consent(engine, external_id, "webhook", "service", True, "agent-7")
    with engine.db.session() as session:
        ensure_built_in(session)
        communication = session.scalar(select(Communication).where(Communication.name == "monthly-statement"))
        communication.config = dict(communication.config, channel_policy=WEBHOOK_FIRST, fallback={"email": "print", "webhook": "print"})


def _messages(engine) -> dict[str, tuple[str, str]]:
    with engine.db.reader() as session:
        rows = session.execute(select(Customer.external_id, Message.channel, Message.state, Message.purpose).join(Customer))
        return {(ext, purpose): (channel, state) for ext, channel, state, purpose in rows}  # type: ignore[misc]


def test_statements_go_to_the_crm_signed_retried_and_fall_back_to_paper(loaded, receiver):
    _webhook_first(loaded, "C-EMAIL", "C-ZH", "C-NOCONSENT")
    Receiver.answers = {"C-ZH": [503], "C-NOCONSENT": [400]}
    outcome = service.run_cycle(loaded, "statement", CYCLE, progress=False)
    if outcome.report.state != "completed":
        outcome = type(outcome)(outcome.plan, service.resume(loaded, outcome.report.run_id, retry_now=True, progress=False))
    messages = _messages(loaded)
    assert messages[("C-EMAIL", "statement")] == ("webhook", "sent")
    assert messages[("C-ZH", "statement")] == ("webhook", "sent")  # the 503 was retried
    assert messages[("C-NOCONSENT", "statement")] == ("print", "sent")  # the CRM's 400: rerouted to paper
    with loaded.db.reader() as session:
        rerouted = session.execute(select(Message.fallback_from, Message.reason).join(Customer)
                                   .where(Customer.external_id == "C-NOCONSENT", Message.purpose == "statement")).one()
    assert rerouted.fallback_from == "webhook" and "HTTP 400" in rerouted.reason
    assert messages[("C-PRINT", "statement")] == ("print", "sent")  # no webhook consent: the policy's next channel

    by_customer: dict[str, list[dict]] = {}
    for payload, headers in Receiver.received:
        by_customer.setdefault(payload["to"], []).append(payload)
        assert headers["webhook-id"] == payload["message_id"]
    assert len(by_customer["C-ZH"]) == 2 and by_customer["C-ZH"][0]["message_id"] == by_customer["C-ZH"][1]["message_id"]
    alice = by_customer["C-EMAIL"][0]
    assert alice["content"]["subject"] and "Alice &lt;script&gt;" in alice["content"]["html"] and alice["content"]["text"]
    assert alice["meta"]["communication"] == "monthly-statement" and alice["meta"]["purpose"] == "statement"
    with loaded.db.reader() as session:
        provider = session.scalar(select(Message.provider_id).join(Customer).where(Customer.external_id == "C-EMAIL",
                                                                                   Message.channel == "webhook"))
    assert provider and provider.startswith("crm-")
    report = service.report(loaded, outcome.report.run_id)
    assert report.by_channel["webhook"]["sent"] == 2 and report.costs["webhook"] == "0.00"


def test_a_policy_naming_an_unset_webhook_stops_before_planning(loaded, settings):
    from app import create_app

    app = create_app({**settings, "channels": {**settings["channels"], "webhook": ""}})
    engine = app.extensions["ccm"]
    try:
        _webhook_first(engine, "C-EMAIL")
        with pytest.raises(PlanError, match=r"names webhook, but \[channels\] webhook is not set"):
            service.run_cycle(engine, "statement", CYCLE, progress=False)
        with engine.db.reader() as session:
            assert session.scalar(select(Message.id).limit(1)) is None
    finally:
        engine.close()
