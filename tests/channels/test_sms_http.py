"""SmsHttpChannel against a real HTTP gateway on 127.0.0.1 (``sms_gateway`` in conftest):
both presets' requests, the classification of every answer and failure, kept-alive
connections, TLS, URLs with masked secrets, and the receipts and replies of both presets."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import logging
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest

from channels import ChannelConfigError, DeliveryResult, Outbound, SmsHttpChannel, channel_from_url
from channels.callback_events import InboundError
from channels.sms_http import retry_after, twilio_signature

NUMBER = "+447700900123"
TEXT = "Your bill of EUR 42.00 is due on 1 May."
SECRETS = (NUMBER, TEXT, "tw-T0ken-9", "js-T0ken-9")


def sms(text: str = TEXT, message_id: str = "m000000123-0a1b2c3d4e5f", **meta: object) -> Outbound:
    return Outbound(message_id, NUMBER, text, meta)


def assert_nothing_personal(detail: str, caplog: pytest.LogCaptureFixture | None = None) -> None:
    logged = "\n".join(r.getMessage() for r in caplog.records) if caplog else ""
    for secret in SECRETS:
        assert secret not in detail and secret not in logged


# --------------------------------------------------------------------------- the two presets


def test_twilio_preset_posts_the_messages_form_with_basic_auth(sms_gateway) -> None:
    url = sms_gateway.url("twilio", path="/twilio", query="status_callback=https%3A%2F%2Fccm.example.com%2Finbound%2Fsms")
    with channel_from_url(url) as channel:
        assert isinstance(channel, SmsHttpChannel)
        result = channel.send(sms(encoding="GSM-7", segments=1))
    assert result.status == "sent" and result.provider_id == f"SM{1:032x}" and result.detail == "1 segment"
    (request,) = sms_gateway.requests
    assert request["path"] == "/twilio/2010-04-01/Accounts/AC0123456789/Messages.json"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"AC0123456789:tw-T0ken-9").decode()
    assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request["body"].decode("ascii")) == {
        "To": [NUMBER], "From": ["+15550100"], "Body": [TEXT], "StatusCallback": ["https://ccm.example.com/inbound/sms"]}


def test_twilio_with_an_api_key_puts_the_account_in_the_path(sms_gateway) -> None:
    url = sms_gateway.url("twilio", auth="SKkey:key-secret@", query="account=AC999")
    with channel_from_url(url) as channel:
        assert channel.send(sms()).status == "sent"
    (request,) = sms_gateway.requests
    assert request["path"] == "/2010-04-01/Accounts/AC999/Messages.json"
    assert request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"SKkey:key-secret").decode()
    assert "StatusCallback" not in parse_qs(request["body"].decode("ascii"))


def test_json_preset_posts_json_with_a_bearer_token(sms_gateway) -> None:
    with channel_from_url(sms_gateway.url("json", path="/v1/messages")) as channel:
        result = channel.send(sms("Grüße, 您好"))
    assert result == DeliveryResult("sent", provider_id="gw-1")
    (request,) = sms_gateway.requests
    assert request["path"] == "/v1/messages"
    assert request["headers"]["Authorization"] == "Bearer js-T0ken-9"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Idempotency-Key"] == "m000000123-0a1b2c3d4e5f"
    assert json.loads(request["body"]) == {
        "to": NUMBER, "from": "+15550100", "text": "Grüße, 您好", "reference": "m000000123-0a1b2c3d4e5f"}


def test_json_preset_without_a_token_sends_no_authorization(sms_gateway) -> None:
    with channel_from_url(sms_gateway.url("json", auth="")) as channel:
        assert channel.send(sms()).status == "sent"
    assert "Authorization" not in sms_gateway.requests[0]["headers"]
    assert sms_gateway.requests[0]["path"] == "/"


@pytest.mark.parametrize(("answer", "provider_id", "detail"), [
    ({"message_id": "abc-123"}, "abc-123", ""),
    ({"id": 981}, "981", ""),
    ({"id": "has a space"}, "m000000123-0a1b2c3d4e5f", "no message id in the answer"),
    ({}, "m000000123-0a1b2c3d4e5f", "no message id in the answer"),
])
def test_json_answers_id_or_message_id_else_the_reference(sms_gateway, answer, provider_id, detail) -> None:
    sms_gateway.ok_answer = answer
    with channel_from_url(sms_gateway.url("json")) as channel:
        result = channel.send(sms())
    assert (result.status, result.provider_id, result.detail) == ("sent", provider_id, detail)


def test_a_long_text_goes_whole_in_one_request_with_the_engines_segment_count(sms_gateway) -> None:
    text = "Ihre Rechnung über EUR 42,00 ist fällig. " * 12  # 480 characters: 4 GSM-7 segments
    with channel_from_url(sms_gateway.url("twilio")) as channel:
        result = channel.send(sms(text, encoding="GSM-7", segments=4))
    assert len(sms_gateway.requests) == 1
    assert parse_qs(sms_gateway.requests[0]["body"].decode("ascii"))["Body"] == [text]
    assert result.detail == "4 segments (gateway counts 1)"  # the test gateway always says 1


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(("mode", "status", "detail"), [
    ("429", "transient", "HTTP 429, error try_later"),
    ("503", "transient", "HTTP 503, error try_later"),
    ("500", "transient", "HTTP 500, error refused"),
    ("408", "transient", "HTTP 408, error refused"),
    ("400", "permanent", "HTTP 400, error 21211"),
    ("401", "permanent", "HTTP 401, error refused"),
    ("404", "permanent", "HTTP 404, error refused"),
    ("302", "permanent", "HTTP 302, error refused (redirects are not followed)"),
])
@pytest.mark.parametrize("preset", ["twilio", "json"])
def test_answers_are_classified(sms_gateway, caplog, preset, mode, status, detail) -> None:
    sms_gateway.answer(mode)
    caplog.set_level(logging.DEBUG)
    with channel_from_url(sms_gateway.url(preset)) as channel:
        result = channel.send(sms())
    assert (result.status, result.detail, result.provider_id) == (status, detail, None)
    assert result.retry_after == (7.0 if status == "transient" else None)
    assert_nothing_personal(result.detail, caplog)
    assert "****" in caplog.text and f"message {sms().message_id}" in caplog.text


def test_retry_after_as_an_http_date_and_absent(sms_gateway) -> None:
    sms_gateway.answer("503")
    sms_gateway.retry_after = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=90), usegmt=True)
    with channel_from_url(sms_gateway.url("json")) as channel:
        first = channel.send(sms())
        sms_gateway.retry_after = None
        second = channel.send(sms())
    assert first.retry_after is not None and 80 <= first.retry_after <= 90
    assert second.status == "transient" and second.retry_after is None


def test_retry_after_values() -> None:
    now = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert retry_after("120", now) == 120.0
    assert retry_after("Fri, 01 May 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Fri, 01 May 2026 11:00:00 GMT", now) == 0.0  # in the past: at once
    assert retry_after("-5", now) is None and retry_after("soon", now) is None and retry_after(None) is None


@pytest.mark.parametrize(("mode", "detail"), [
    ("drop", "gateway closed the connection without answering"),
    ("cut", "gateway closed the connection mid-answer"),
])
def test_a_gateway_that_hangs_up_is_transient_and_the_next_send_reconnects(sms_gateway, mode, detail) -> None:
    sms_gateway.answer(mode)
    with channel_from_url(sms_gateway.url("twilio")) as channel:
        assert channel.send(sms()) == DeliveryResult("transient", detail=detail)
        sms_gateway.answer("ok")
        assert channel.send(sms()).status == "sent"


def test_a_gateway_that_does_not_answer_times_out_quickly(sms_gateway) -> None:
    sms_gateway.answer("hang")
    with channel_from_url(sms_gateway.url("json", query="connect_timeout=0.5&read_timeout=0.2")) as channel:
        started = time.monotonic()
        result = channel.send(sms())
    assert (result.status, result.detail) == ("transient", "timed out")
    assert time.monotonic() - started < 2


def test_a_closed_port_is_transient() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with channel_from_url(f"sms+http://:tok@127.0.0.1:{port}/send?preset=json&from=ACME") as channel:
        result = channel.send(sms())
    assert (result.status, result.detail) == ("transient", "ECONNREFUSED: cannot reach gateway")


@pytest.mark.parametrize(("out", "detail"), [
    (Outbound("m1", "07700 900123", TEXT), "recipient is not an E.164 number"),
    (Outbound("m1", NUMBER, "x" * 1601), "text longer than 1600 characters"),
    (Outbound("m1", NUMBER, b"%PDF-1.7"), "content is not SMS text"),
])
def test_what_cannot_be_an_sms_is_permanent_and_never_posted(sms_gateway, out, detail) -> None:
    with channel_from_url(sms_gateway.url("twilio")) as channel:
        assert channel.send(out) == DeliveryResult("permanent", detail=detail)
    assert sms_gateway.requests == []


# --------------------------------------------------------------------------- connections


def test_one_kept_alive_connection_is_reused_until_close(sms_gateway) -> None:
    with channel_from_url(sms_gateway.url("twilio")) as channel:
        assert [channel.send(sms()).status for _ in range(5)] == ["sent"] * 5
        assert sms_gateway.connections == 1
        channel.close()
        channel.close()
        assert channel.send(sms()).status == "sent"
        assert sms_gateway.connections == 2


def test_a_connection_the_gateway_closed_while_idle_is_replaced(sms_gateway) -> None:
    sms_gateway.idle_timeout = 0.1
    with channel_from_url(sms_gateway.url("json")) as channel:
        assert channel.send(sms()).status == "sent"
        time.sleep(0.4)  # the gateway hangs up the idle connection
        assert channel.send(sms()).status == "sent"
    assert sms_gateway.connections == 2 and len(sms_gateway.requests) == 2


def test_connection_close_in_the_answer_is_honoured(sms_gateway) -> None:
    sms_gateway.close_after_answer = True
    with channel_from_url(sms_gateway.url("json")) as channel:
        assert [channel.send(sms()).status for _ in range(3)] == ["sent"] * 3
    assert sms_gateway.connections == 3


def test_concurrent_sends_use_at_most_sessions_connections(sms_gateway) -> None:
    with channel_from_url(sms_gateway.url("json", query="sessions=2")) as channel:
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(channel.send, [sms(message_id=f"m{i}") for i in range(30)]))
    assert [r.status for r in results] == ["sent"] * 30
    assert 1 <= sms_gateway.connections <= 2
    assert sorted(json.loads(r["body"])["reference"] for r in sms_gateway.requests) == sorted(f"m{i}" for i in range(30))


@pytest.fixture
def tls_gateway(sms_gateway, server_tls):
    sms_gateway.server.socket = server_tls.wrap_socket(sms_gateway.server.socket, server_side=True)
    return sms_gateway


def test_https_with_a_trusted_certificate(tls_gateway, client_tls) -> None:
    with SmsHttpChannel(tls_gateway.url("twilio", scheme="sms+https"), ssl_context=client_tls) as channel:
        assert channel.send(sms()).status == "sent"
        assert channel.send(sms()).status == "sent"
    assert tls_gateway.connections == 1


def test_https_with_an_untrusted_certificate_is_transient(tls_gateway) -> None:
    with channel_from_url(tls_gateway.url("twilio", scheme="sms+https")) as channel:
        result = channel.send(sms())
    assert (result.status, result.detail) == ("transient", "TLS certificate not trusted")
    assert tls_gateway.requests == []


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(("url", "shown"), [
    ("sms+https://AC1:tw-T0ken-9@api.twilio.com?preset=twilio&from=%2B15550100",
     "sms+https://AC1:****@api.twilio.com:443?preset=twilio&from=%2B15550100&connect_timeout=5&read_timeout=10"),
    ("sms+https://SK1:tw-T0ken-9@api.twilio.com:8443/proxy?preset=twilio&from=ACME&account=AC1"
     "&status_callback=https%3A%2F%2Fccm.example.com%2Fcb&sessions=2&read_timeout=2.5",
     "sms+https://SK1:****@api.twilio.com:8443/proxy?preset=twilio&from=ACME&account=AC1"
     "&status_callback=https%3A%2F%2Fccm.example.com%2Fcb&connect_timeout=5&read_timeout=2.5&sessions=2"),
    ("sms+http://:js-T0ken-9@127.0.0.1:8080/v1/messages?from=%2B15550100",
     "sms+http://:****@127.0.0.1:8080/v1/messages?preset=json&from=%2B15550100&connect_timeout=5&read_timeout=10"),
    ("sms+http://[::1]/send?preset=json&from=ACME&connect_timeout=0.5",
     "sms+http://[::1]:80/send?preset=json&from=ACME&connect_timeout=0.5&read_timeout=10"),
])
def test_urls_round_trip_with_the_token_masked(url, shown) -> None:
    channel = channel_from_url(url)
    assert channel.url() == shown and repr(channel) == f"<SmsHttpChannel {shown}>"
    full = channel.url(privacy=False)
    assert SmsHttpChannel(full).url(privacy=False) == full and SmsHttpChannel(full).url() == shown
    assert SmsHttpChannel(shown).url() == shown
    assert ("T0ken-9" in full) == ("T0ken-9" in url)


def test_a_token_with_reserved_characters_round_trips(sms_gateway) -> None:
    with SmsHttpChannel(sms_gateway.url("json", auth=":a%2Fb%3Ac%40d@")) as channel:
        assert channel.password == "a/b:c@d"
        assert SmsHttpChannel(channel.url(privacy=False)).password == "a/b:c@d"
        assert channel.send(sms()).status == "sent"
    assert sms_gateway.requests[0]["headers"]["Authorization"] == "Bearer a/b:c@d"


@pytest.mark.parametrize(("url", "message"), [
    ("sms+http:///path?preset=json&from=A", "needs a host"),
    ("sms+http://h?preset=smpp&from=A", "preset must be one of twilio, json"),
    ("sms+http://h?preset=json", "needs from="),
    ("sms+http://h?preset=json&from=A&colour=red", "unknown option 'colour'"),
    ("sms+http://h?preset=twilio&from=A", "preset twilio needs ACCOUNT:TOKEN@"),
    ("sms+http://AC1@h?preset=twilio&from=A", "preset twilio needs ACCOUNT:TOKEN@"),
    ("sms+http://js-T0ken-9@h?preset=json&from=A", "preset json takes the token as the password"),
    ("sms+http://:t@h?preset=json&from=A&account=AC1", "'account' is for preset twilio"),
    ("sms+http://AC1:t@h?preset=twilio&from=A&status_callback=ftp%3A%2F%2Fx", "status_callback must be an http"),
    ("sms+http://:t@h?preset=json&from=A&read_timeout=0", "read_timeout must be more than 0"),
    ("sms+http://:t@h?preset=json&from=A&connect_timeout=soon", "connect_timeout must be a number"),
    ("sms+http://:t@h?preset=json&from=A&sessions=17", "sessions must be a whole number from 1 to 16"),
    ("sms+http://:t@h/a b?preset=json&from=A", "must be %-escaped"),
    ("sms+http://:t@h?preset=json&from=A#x", "fragment"),
])
def test_bad_urls_are_refused_naming_the_problem(url, message) -> None:
    with pytest.raises(ChannelConfigError, match=message) as info:
        SmsHttpChannel(url)
    assert "T0ken" not in str(info.value)


# --------------------------------------------------------------------------- callbacks


def twilio() -> SmsHttpChannel:
    return SmsHttpChannel("sms+https://AC0123456789:tw-T0ken-9@api.twilio.com?preset=twilio&from=%2B15550100")


def json_gateway() -> SmsHttpChannel:
    return SmsHttpChannel("sms+https://:js-T0ken-9@sms.example.com/v1/messages?preset=json&from=ACME")


BLANK = {"event_id": None, "type": None, "at": None, "message": None, "from": None, "text": None,
         "status": None, "reason": None, "permanent": False}


def test_twilio_status_callbacks_become_delivered_and_failed() -> None:
    channel = twilio()
    sid = "SM" + "a" * 32
    base = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC0123456789", "From": "+15550100", "To": NUMBER}
    assert channel.parse_inbound({**base, "MessageStatus": "delivered", "SmsStatus": "delivered"}) == [
        {**BLANK, "event_id": f"{sid}:delivered", "type": "delivered", "message": sid, "status": "delivered"}]
    assert channel.parse_inbound({**base, "MessageStatus": "undelivered", "ErrorCode": "30003"}) == [
        {**BLANK, "event_id": f"{sid}:undelivered", "type": "failed", "message": sid, "status": "undelivered",
         "reason": "error 30003"}]
    (hard,) = channel.parse_inbound({**base, "MessageStatus": "failed", "ErrorCode": 30005})
    assert (hard["type"], hard["permanent"], hard["reason"]) == ("failed", True, "error 30005")
    for on_its_way in ("queued", "sending", "sent", "accepted"):
        assert channel.parse_inbound({**base, "MessageStatus": on_its_way}) == []


def test_twilio_incoming_message_becomes_a_reply() -> None:
    sid = "SM" + "b" * 32
    payload = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC0123456789", "From": NUMBER, "To": "+15550100",
               "Body": "STOP", "NumMedia": "0", "SmsStatus": "received"}
    assert twilio().parse_inbound(payload) == [{**BLANK, "event_id": sid, "type": "reply", "from": NUMBER, "text": "STOP"}]
    del payload["SmsStatus"]
    assert twilio().parse_inbound(payload)[0]["type"] == "reply"


@pytest.mark.parametrize(("payload", "message"), [
    ({"MessageStatus": "delivered"}, "MessageSid missing"),
    ({"MessageSid": "SM1", "AccountSid": "ACother", "MessageStatus": "delivered"}, "not this channel's account"),
    ({"MessageSid": "SM1"}, "neither MessageStatus nor Body"),
    ({"MessageSid": "SM1", "SmsStatus": "received", "Body": "hi"}, "a reply needs from and text"),
    (["not", "an", "object"], "expected an object"),
])
def test_twilio_callbacks_that_cannot_be_read(payload, message) -> None:
    with pytest.raises(InboundError, match=message):
        twilio().parse_inbound(payload)


def test_json_receipts_and_replies() -> None:
    channel = json_gateway()
    payload = [
        {"id": "gw-1", "reference": "m000000123-0a1b2c3d4e5f", "status": "delivered", "at": "2026-11-30T10:00:00+01:00"},
        {"id": "gw-2", "status": "failed", "error": "unknown_subscriber", "permanent": True},
        {"id": "gw-3", "status": "undelivered"},
        {"id": "gw-4", "status": "queued"},
        {"id": "in-7", "from": NUMBER, "to": "ACME", "text": "HELP", "at": "2026-11-30T09:05:00Z"},
    ]
    assert channel.parse_inbound(payload) == [
        {**BLANK, "event_id": "gw-1:delivered", "type": "delivered", "message": "m000000123-0a1b2c3d4e5f",
         "status": "delivered", "at": dt.datetime(2026, 11, 30, 9, 0)},
        {**BLANK, "event_id": "gw-2:failed", "type": "failed", "message": "gw-2", "status": "failed",
         "reason": "error unknown_subscriber", "permanent": True},
        {**BLANK, "event_id": "gw-3:undelivered", "type": "failed", "message": "gw-3", "status": "undelivered"},
        {**BLANK, "event_id": "in-7", "type": "reply", "from": NUMBER, "text": "HELP", "at": dt.datetime(2026, 11, 30, 9, 5)},
    ]
    assert channel.parse_inbound({"id": "gw-9", "status": "delivered"})[0]["message"] == "gw-9"


@pytest.mark.parametrize(("payload", "message"), [
    ({"status": "delivered"}, "callback 1: id missing"),
    ([{"id": "a", "status": "sent"}, {"id": "b", "text": "hi"}], "callback 2: expected a receipt"),
    ({"id": "a", "status": "failed", "permanent": "yes"}, "permanent must be true or false"),
    ({"id": "a", "from": NUMBER, "text": "hi", "at": "yesterday"}, "at must be an ISO 8601 time"),
    ("delivered", "callback 1: not an object"),
])
def test_json_callbacks_that_cannot_be_read(payload, message) -> None:
    with pytest.raises(InboundError, match=message):
        json_gateway().parse_inbound(payload)


@pytest.mark.parametrize("channel", [twilio(), json_gateway()], ids=["twilio", "json"])
def test_both_presets_also_take_the_engines_callback_format(channel) -> None:
    event = {"id": "e1", "type": "reply", "from": "+14155550101", "text": "STOP", "at": "2026-11-30T10:00:00+01:00"}
    (parsed,) = channel.parse_inbound({"events": [event]})
    assert parsed["event_id"] == "e1" and parsed["at"].isoformat() == "2026-11-30T09:00:00"
    with pytest.raises(InboundError, match="event 1: type must be one of"):
        channel.parse_inbound({"events": [{"id": "x", "type": "teleport"}]})


# The worked example of Twilio's "Webhooks security" guide: auth token 12345, this URL, these
# fields of a <Gather>, and the X-Twilio-Signature Twilio sends with them.
TWILIO_EXAMPLE_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_EXAMPLE = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030",
                  "To": "+18005551212"}
TWILIO_EXAMPLE_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def twilio_with_token(token: str = "12345") -> SmsHttpChannel:
    return SmsHttpChannel(f"sms+https://AC0123456789:{token}@api.twilio.com?preset=twilio&from=%2B15550100")


def test_the_twilio_signature_of_twilios_documented_example() -> None:
    assert twilio_signature("12345", TWILIO_EXAMPLE_URL, TWILIO_EXAMPLE) == TWILIO_EXAMPLE_SIGNATURE
    in_another_order = list(reversed(TWILIO_EXAMPLE.items()))  # as (name, value) pairs, in any order
    assert twilio_signature("12345", TWILIO_EXAMPLE_URL, in_another_order) == TWILIO_EXAMPLE_SIGNATURE
    # A name sent twice: each value, sorted (twilio-python's test vector of the same URL).
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature("12345", TWILIO_EXAMPLE_URL, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_a_twilio_callback_verifies_only_as_signed() -> None:
    channel = twilio_with_token()
    fields = list(TWILIO_EXAMPLE.items())
    assert channel.verify_callback(TWILIO_EXAMPLE_URL, fields, TWILIO_EXAMPLE_SIGNATURE)
    assert channel.verify_callback(TWILIO_EXAMPLE_URL, TWILIO_EXAMPLE, TWILIO_EXAMPLE_SIGNATURE)  # a mapping too
    refused = [
        (TWILIO_EXAMPLE_URL, [*fields[:2], ("Digits", "9999"), *fields[3:]], TWILIO_EXAMPLE_SIGNATURE),  # a tampered field
        (TWILIO_EXAMPLE_URL, [*fields, ("Extra", "1")], TWILIO_EXAMPLE_SIGNATURE),  # a field added
        (TWILIO_EXAMPLE_URL, fields[1:], TWILIO_EXAMPLE_SIGNATURE),  # one left out
        ("https://mycompany.com/myapp.php?foo=1&bar=3", fields, TWILIO_EXAMPLE_SIGNATURE),  # another query
        ("http://mycompany.com/myapp.php?foo=1&bar=2", fields, TWILIO_EXAMPLE_SIGNATURE),  # another scheme
        ("https://evil.example/myapp.php?foo=1&bar=2", fields, TWILIO_EXAMPLE_SIGNATURE),
        (TWILIO_EXAMPLE_URL, fields, TWILIO_EXAMPLE_SIGNATURE[:-1]),
        (TWILIO_EXAMPLE_URL, fields, ""),
        (TWILIO_EXAMPLE_URL, fields, None),
        (TWILIO_EXAMPLE_URL, fields, "0/KCTR6DLpKmkAf8muzZqo1nDgQ\u00e9"),  # not ASCII: refused, not raised
    ]
    for url, params, signature in refused:
        assert not channel.verify_callback(url, params, signature), (url, params, signature)
    assert not twilio_with_token("54321").verify_callback(TWILIO_EXAMPLE_URL, fields, TWILIO_EXAMPLE_SIGNATURE)
    assert not json_gateway().verify_callback(TWILIO_EXAMPLE_URL, fields, TWILIO_EXAMPLE_SIGNATURE)  # signs no forms


def test_a_twilio_signature_verifies_with_or_without_the_port() -> None:
    """Twilio signs the URL with or without its port (twilio-python's vectors)."""
    channel = twilio_with_token()
    fields = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309", "To": "+18005551212",
              "Caller": "+14158675309"}
    assert channel.verify_callback(TWILIO_EXAMPLE_URL, fields, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert channel.verify_callback(TWILIO_EXAMPLE_URL, fields, "kvajT1Ptam85bY51eRf/AJRuM3w=")  # signed with :443
    assert channel.verify_callback("https://mycompany.com:1234/myapp.php?foo=1&bar=2", fields, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert channel.verify_callback("http://mycompany.com/myapp.php?foo=1&bar=2", fields, "0ZXoZLH/DfblKGATFgpif+LLRf4=")  # :80
    assert not channel.verify_callback("http://mycompany.com/myapp.php?foo=1&bar=2", fields, "kvajT1Ptam85bY51eRf/AJRuM3w=")


def test_https_to_a_plain_http_gateway_is_transient(sms_gateway) -> None:
    """The TLS handshake fails: classified, not raised."""
    context = ssl.create_default_context()
    with SmsHttpChannel(sms_gateway.url("json", scheme="sms+https"), ssl_context=context) as channel:
        result = channel.send(sms())
    assert result.status == "transient" and result.detail.startswith("TLS")
