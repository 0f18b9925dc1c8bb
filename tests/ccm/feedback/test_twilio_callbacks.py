"""Twilio's own callbacks to ``/inbound/sms``: form posts signed with ``X-Twilio-Signature``
(HMAC-SHA1 with the account's auth token over the URL Twilio called and the sorted fields).
The weekly deals go out through the sms-http adapter's twilio preset to a Twilio stand-in
on loopback; its status callbacks and incoming messages come back signed as Twilio signs
them, over ``[web] public_url`` (the app itself is reached at another address, as behind a
proxy), and what is signed otherwise is refused."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode

import pytest
from sqlalchemy import func, select

from app import create_app
from channels.sms_http import twilio_signature
from ccm.models import Message, Suppression
from ccm.models.feedback import ResponseEvent

from .conftest import PUBLIC, feedback_settings, signed, start_campaign

ACCOUNT, TOKEN, NUMBER = "AC0123456789abcdef0123456789abcdef", "tw-auth-T0ken-9", "+15550100"
FORM = "application/x-www-form-urlencoded"
BEHIND_PROXY = "http://127.0.0.1:8000"  # where the app is reached; Twilio calls PUBLIC


class TwilioStandIn:
    """Twilio's Messages API on 127.0.0.1: every message is queued with a new ``SM…`` sid."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                form = dict(parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode("ascii")))
                sid = f"SM{len(stand_in.sent) + 1:032x}"
                stand_in.sent.append({**form, "sid": sid})
                answer = json.dumps({"sid": sid, "status": "queued", "num_segments": "1"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def channel_url(self) -> str:
        return f"sms+http://{ACCOUNT}:{TOKEN}@127.0.0.1:{self.server.server_address[1]}?preset=twilio&from=%2B15550100"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def sent_through_twilio(make_settings, tmp_path, twilio):
    """The weekly deals sent with ``[channels] sms`` a twilio-preset URL: (app, engine, sids
    of the texts sent, by message id)."""
    app, engine, *_ = start_campaign(make_settings, tmp_path, channels={"sms": twilio.channel_url})
    with engine.db.reader() as session:
        sids = {m.id: m.provider_id for m in session.scalars(select(Message).where(Message.channel == "sms",
                                                                                  Message.state == "sent"))}
    assert len(sids) == 8 and sorted(sids.values()) == sorted(text["sid"] for text in twilio.sent)
    yield app, engine, sids
    engine.close()


def twilio_post(client, fields: dict[str, str], *, path: str = "/inbound/sms", token: str = TOKEN,
                signed_url: str | None = None, signature: str | None = None, base_url: str = BEHIND_PROXY):
    """Post ``fields`` as Twilio does: a form signed over the URL it called (PUBLIC + path)."""
    if signature is None:
        signature = twilio_signature(token, signed_url or PUBLIC + path, fields)
    headers = {"Content-Type": FORM, "User-Agent": "TwilioProxy/1.1", "I-Twilio-Idempotency-Token": "idem-1"}
    if signature:
        headers["X-Twilio-Signature"] = signature
    return client.post(path, data=urlencode(fields).encode("utf-8"), headers=headers, base_url=base_url)


def status_callback(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "ApiVersion": "2010-04-01", "From": NUMBER, "MessageSid": sid, "MessageStatus": status,
            "SmsSid": sid, "SmsStatus": status, "To": "+14155550003", **extra}


def incoming(sid: str, sender: str, body: str) -> dict[str, str]:
    return {"AccountSid": ACCOUNT, "ApiVersion": "2010-04-01", "Body": body, "From": sender, "FromCountry": "US",
            "MessageSid": sid, "NumMedia": "0", "NumSegments": "1", "SmsMessageSid": sid, "SmsSid": sid,
            "SmsStatus": "received", "To": NUMBER, "ToCountry": "US"}


def events(engine) -> list[tuple[str, int | None]]:
    with engine.db.reader() as session:
        return sorted((e.type, e.message_id) for e in session.scalars(select(ResponseEvent)))


def test_a_signed_status_callback_records_the_delivery_once(sent_through_twilio):
    app, engine, sids = sent_through_twilio
    client = app.test_client()
    (message_id, sid), (failed_id, failed_sid) = sorted(sids.items())[:2]
    answer = twilio_post(client, status_callback(sid, "delivered"))
    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    assert answer.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert events(engine) == [("delivered", message_id)]
    assert twilio_post(client, status_callback(sid, "delivered")).status_code == 200  # Twilio retries: recorded once
    assert twilio_post(client, status_callback(sid, "sent")).status_code == 200  # on its way: nothing to record
    assert events(engine) == [("delivered", message_id)]
    twilio_post(client, status_callback(failed_sid, "undelivered", ErrorCode="30005"))  # unknown handset: for good
    assert events(engine) == sorted([("delivered", message_id), ("bounced", failed_id)])
    with engine.db.reader() as session:
        phone = session.get(Message, failed_id).customer.phone
        assert {(s.channel, s.address, s.reason) for s in session.scalars(select(Suppression))} == {("sms", phone, "hard_bounce")}


def test_a_signed_stop_reply_suppresses_the_number_and_other_replies_are_recorded(sent_through_twilio):
    app, engine, _ = sent_through_twilio
    client = app.test_client()
    answer = twilio_post(client, incoming("SM" + "b" * 32, "+14155550001", "STOP"))  # S001
    assert answer.status_code == 200 and answer.mimetype == "text/xml" and b"<Response/>" in answer.data
    reply = twilio_post(client, incoming("SM" + "c" * 32, "+14155550002", "Danke schön, gern mehr davon"))  # not ASCII
    assert reply.status_code == 200
    with engine.db.reader() as session:
        suppressed = {(s.channel, s.address, s.reason) for s in session.scalars(select(Suppression))}
        assert suppressed == {("sms", "+14155550001", "stop")}
        assert sorted(e.type for e in session.scalars(select(ResponseEvent))) == ["opted_out", "replied"]


def test_the_query_string_twilio_called_is_part_of_what_it_signed(sent_through_twilio):
    app, engine, sids = sent_through_twilio
    client = app.test_client()
    message_id, sid = next(iter(sids.items()))
    fields = status_callback(sid, "delivered")
    assert twilio_post(client, fields, path="/inbound/sms?relay=eu%2D1").status_code == 200
    moved = twilio_post(client, fields, path="/inbound/sms?relay=us", signed_url=PUBLIC + "/inbound/sms?relay=eu%2D1")
    assert moved.status_code == 401
    assert events(engine) == [("delivered", message_id)]


def test_unsigned_or_badly_signed_form_posts_are_refused(sent_through_twilio):
    app, engine, sids = sent_through_twilio
    client = app.test_client()
    stop = incoming("SM" + "d" * 32, "+14155550004", "STOP")
    signed_stop = twilio_signature(TOKEN, PUBLIC + "/inbound/sms", stop)
    refused = {
        "no signature": twilio_post(client, stop, signature=""),
        "another token": twilio_post(client, stop, token="not-the-auth-token"),
        "the local URL": twilio_post(client, stop, signed_url=BEHIND_PROXY + "/inbound/sms"),  # what request.url is
        "a tampered field": twilio_post(client, {**stop, "From": "+14155550005"}, signature=signed_stop),
        "a field added": twilio_post(client, {**stop, "Extra": "1"}, signature=signed_stop),
        "the e-mail endpoint": twilio_post(client, stop, path="/inbound/email"),
    }
    for why, answer in refused.items():
        assert answer.status_code == 401 and answer.mimetype == "application/problem+json", why
        assert answer.json["title"] == "Unauthorized" and TOKEN not in answer.get_data(as_text=True), why
    assert refused["no signature"].json["detail"] == "missing X-Twilio-Signature"
    assert events(engine) == []
    with engine.db.reader() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    bad = twilio_post(client, {"AccountSid": ACCOUNT, "MessageStatus": "delivered"})  # signed, but no MessageSid
    assert bad.status_code == 400 and "MessageSid missing" in bad.json["detail"]


def test_the_json_callbacks_stay_as_they_are_with_a_twilio_channel(sent_through_twilio):
    app, engine, sids = sent_through_twilio
    client = app.test_client()
    message_id, sid = next(iter(sids.items()))
    body, headers = signed({"events": [{"id": "j-1", "type": "delivered", "message": sid}]})
    answer = client.post("/inbound/sms", data=body, headers=headers)
    assert answer.status_code == 200 and answer.json["recorded"] == 1
    body, headers = signed({"events": [{"id": "j-2", "type": "reply", "from": "+14155550006", "text": "hi"}]})
    as_curl_posts_it = client.post("/inbound/sms", data=body, headers={**headers, "Content-Type": FORM})  # curl -d
    assert as_curl_posts_it.status_code == 200 and as_curl_posts_it.json["recorded"] == 1
    twilio_fields = json.dumps(status_callback(sid, "delivered")).encode()  # Twilio's fields as JSON: signed the engine's way
    unsigned = client.post("/inbound/sms", data=twilio_fields, headers={"Content-Type": "application/json",
                                                                          "X-Twilio-Signature": "anything"})
    assert unsigned.status_code == 401 and "X-CCM" in unsigned.json["detail"]
    assert [kind for kind, _ in events(engine)] == ["delivered", "replied"] and ("delivered", message_id) in events(engine)


def test_form_posts_to_other_sms_channels_are_refused_and_bodies_are_read_within_the_limit(make_settings, tmp_path):
    json_preset = "sms+https://:js-T0ken-9@sms.example.com/v1/messages?preset=json&from=ACME"
    app = create_app(feedback_settings(make_settings, tmp_path / "json", channels={"sms": json_preset}))
    client = app.test_client()
    stop = incoming("SM" + "e" * 32, "+14155550004", "STOP")
    refused = twilio_post(client, stop)  # the json preset's gateways sign no forms
    assert refused.status_code == 401 and refused.json["detail"].startswith("bad signature")
    app.extensions["ccm"].close()

    twilio_url = f"sms+https://{ACCOUNT}:{TOKEN}@api.twilio.com?preset=twilio&from=%2B15550100"
    small = create_app(feedback_settings(make_settings, tmp_path / "small", channels={"sms": twilio_url},
                                         web={"max_body_bytes": 1000}, feedback={"webhook_secret": ""}))
    small.extensions["ccm"].db.upgrade()
    client = small.test_client()
    large = {**stop, "Body": "STOP " + "x" * 2000}
    assert twilio_post(client, large, signature="").status_code == 401  # refused on its headers alone
    too_large = twilio_post(client, large)
    assert too_large.status_code == 413 and too_large.mimetype == "application/problem+json"
    taken = twilio_post(client, stop)  # no [feedback] webhook_secret needed: the auth token signs them
    assert taken.status_code == 200
    with small.extensions["ccm"].db.reader() as session:
        assert list(session.scalars(select(Suppression.address))) == ["+14155550004"]
    small.extensions["ccm"].close()
