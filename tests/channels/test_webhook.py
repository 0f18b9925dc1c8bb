"""WebhookChannel against a real HTTP receiver on 127.0.0.1 (``sms_gateway`` in conftest,
which records every request and answers as told): the signed body, the classification of
every answer and failure, TLS, bad content, and URLs with the secret masked."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from urllib.parse import quote

import pytest
from standardwebhooks import Webhook

from channels import ChannelConfigError, DeliveryResult, Outbound, WebhookChannel, channel_from_url

SECRET = "whsec_" + base64.b64encode(b"\xfb\xef\xff-webhook-test-signing-key-42").decode()  # has '+' and '/'
TO = "CUST-7731-ANNA"
CONTENT = {"subject": "Your statement", "text": "Grüße: EUR 42.00 due on 1 May.", "html": "<p>Grüße</p>"}
META = {"communication": "statement", "purpose": "statement", "run_id": 12, "customer": TO}


def message(message_id: str = "m000000123-0a1b2c3d4e5f", content: object = CONTENT, meta: object = META) -> Outbound:
    return Outbound(message_id, TO, content, meta)  # type: ignore[arg-type]


def hook_url(receiver, query: str = "", secret: str = SECRET, scheme: str = "webhook+http") -> str:
    extra = f"&{query}" if query else ""
    return f"{scheme}://127.0.0.1:{receiver.port}/hooks/ccm?secret={quote(secret, safe='')}{extra}"


def assert_nothing_personal(detail: str, caplog: pytest.LogCaptureFixture) -> None:
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (TO, SECRET, quote(SECRET, safe=""), SECRET[6:]):
        assert secret not in detail and secret not in logged


def test_posts_the_message_as_compact_json_signed_the_standard_webhooks_way(sms_gateway) -> None:
    with channel_from_url(hook_url(sms_gateway)) as channel:
        assert isinstance(channel, WebhookChannel)
        started = int(time.time())
        result = channel.send(message())
    assert result == DeliveryResult("sent", provider_id="gw-1")
    (request,) = sms_gateway.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hooks/ccm"
    assert headers["Content-Type"] == "application/json" and headers["webhook-id"] == "m000000123-0a1b2c3d4e5f"
    assert started <= int(headers["webhook-timestamp"]) <= time.time()
    expected = {"message_id": "m000000123-0a1b2c3d4e5f", "to": TO, "content": CONTENT, "meta": META}
    assert body == json.dumps(expected, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert Webhook(SECRET).verify(body, headers) == expected
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(body.replace(b"42.00", b"4200"), headers)


def test_a_retry_carries_the_same_webhook_id_and_a_fresh_signature(sms_gateway) -> None:
    with channel_from_url(hook_url(sms_gateway, secret=SECRET[6:])) as channel:  # (the base64 alone)
        sms_gateway.answer("503")
        assert channel.send(message()).status == "transient"
        sms_gateway.answer("ok")
        assert channel.send(message()).status == "sent"
    first, second = sms_gateway.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == "m000000123-0a1b2c3d4e5f"
    for request in (first, second):
        Webhook(SECRET).verify(request["body"], request["headers"])


@pytest.mark.parametrize(("answer", "provider_id"), [
    ({"id": "crm-981"}, "crm-981"),
    ({"id": 981}, "981"),
    ({"id": "has a space"}, "m000000123-0a1b2c3d4e5f"),
    ({"ok": True}, "m000000123-0a1b2c3d4e5f"),
])
def test_the_provider_id_is_the_answers_id_else_the_message_id(sms_gateway, answer, provider_id) -> None:
    sms_gateway.ok_answer = answer
    with channel_from_url(hook_url(sms_gateway)) as channel:
        assert channel.send(message()) == DeliveryResult("sent", provider_id=provider_id)


@pytest.mark.parametrize(("mode", "status", "detail"), [
    ("429", "transient", "HTTP 429, error try_later"),
    ("503", "transient", "HTTP 503, error try_later"),
    ("500", "transient", "HTTP 500, error refused"),
    ("408", "transient", "HTTP 408, error refused"),
    ("400", "permanent", "HTTP 400, error 21211"),  # (its message quotes the recipient)
    ("401", "permanent", "HTTP 401, error refused"),
    ("404", "permanent", "HTTP 404, error refused"),
    ("302", "permanent", "HTTP 302, error refused (redirects are not followed)"),
])
def test_answers_are_classified_as_sms_http_does(sms_gateway, caplog, mode, status, detail) -> None:
    sms_gateway.answer(mode)
    caplog.set_level(logging.DEBUG)
    with channel_from_url(hook_url(sms_gateway)) as channel:
        result = channel.send(message())
    assert (result.status, result.detail, result.provider_id) == (status, detail, None)
    assert result.retry_after == (7.0 if status == "transient" else None)
    assert_nothing_personal(result.detail, caplog)
    assert "secret=****" in caplog.text and "message m000000123-0a1b2c3d4e5f" in caplog.text


@pytest.mark.parametrize(("mode", "detail"), [
    ("drop", "receiver closed the connection without answering"),
    ("cut", "receiver closed the connection mid-answer"),
])
def test_a_receiver_that_hangs_up_is_transient_and_the_next_send_reconnects(sms_gateway, mode, detail) -> None:
    sms_gateway.answer(mode)
    with channel_from_url(hook_url(sms_gateway)) as channel:
        assert channel.send(message()) == DeliveryResult("transient", detail=detail)
        sms_gateway.answer("ok")
        assert channel.send(message()).status == "sent"


def test_a_receiver_that_does_not_answer_times_out_quickly(sms_gateway) -> None:
    sms_gateway.answer("hang")
    with channel_from_url(hook_url(sms_gateway, "timeout=0.2")) as channel:
        started = time.monotonic()
        result = channel.send(message())
    assert (result.status, result.detail) == ("transient", "timed out")
    assert time.monotonic() - started < 2


def test_a_closed_port_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with channel_from_url(f"webhook+http://127.0.0.1:{port}/?secret={quote(SECRET)}") as channel:
        assert channel.send(message()) == DeliveryResult("transient", detail="ECONNREFUSED: cannot reach receiver")


@pytest.fixture
def tls_receiver(sms_gateway, server_tls):
    sms_gateway.server.socket = server_tls.wrap_socket(sms_gateway.server.socket, server_side=True)
    return sms_gateway


def test_https_with_a_trusted_certificate(tls_receiver, client_tls) -> None:
    with WebhookChannel(hook_url(tls_receiver, scheme="webhook+https"), ssl_context=client_tls) as channel:
        assert channel.send(message()).status == "sent"
    Webhook(SECRET).verify(tls_receiver.requests[0]["body"], tls_receiver.requests[0]["headers"])


def test_https_with_an_untrusted_certificate_is_transient_and_posts_nothing(tls_receiver) -> None:
    with channel_from_url(hook_url(tls_receiver, scheme="webhook+https")) as channel:
        assert channel.send(message()) == DeliveryResult("transient", detail="TLS certificate not trusted")
    assert tls_receiver.requests == []


@pytest.mark.parametrize(("out", "detail"), [
    (message(content="plain text"), "content is not a rendered message (subject, text, html)"),
    (message(content={"subject": "Hi", "html": "<p>Hi</p>"}), "content has no text"),
    (message(content={**CONTENT, "html": b"<p>"}), "content html is not text"),
    (message(meta={"when": object()}), "content or meta cannot be JSON (TypeError)"),
    (message(meta={"amount": float("nan")}), "content or meta cannot be JSON (ValueError)"),
    (message(content={**CONTENT, "text": "x" * WebhookChannel.max_body}), "body larger than 262144 bytes"),
    (message(message_id="m1\r\nX-Evil: 1"), "request cannot be encoded for HTTP"),
    (Outbound("m1", "", CONTENT), "no recipient (the customer's id)"),
])
def test_what_cannot_be_posted_is_permanent_and_never_posted(sms_gateway, out, detail) -> None:
    with channel_from_url(hook_url(sms_gateway)) as channel:
        assert channel.send(out) == DeliveryResult("permanent", detail=detail)
    assert sms_gateway.requests == []


# --------------------------------------------------------------------------- URLs


def test_url_round_trips_with_the_secret_masked() -> None:
    url = f"webhook+https://crm.example.com/hooks/ccm?secret={quote(SECRET, safe='')}&timeout=2.5&sessions=8"
    shown = "webhook+https://crm.example.com:443/hooks/ccm?secret=****&timeout=2.5&sessions=8"
    channel = channel_from_url(url)
    assert channel.url() == shown and repr(channel) == f"<WebhookChannel {shown}>"
    full = channel.url(privacy=False)
    assert full == url.replace(".com/", ".com:443/")
    assert WebhookChannel(full).url(privacy=False) == full and WebhookChannel(shown).url() == shown
    default = WebhookChannel(f"webhook+http://[::1]?secret={quote(SECRET)}")
    assert default.url() == "webhook+http://[::1]:80/?secret=****&timeout=10"


def test_a_plus_the_query_read_as_a_space_is_a_plus(sms_gateway) -> None:
    raw = f"webhook+http://127.0.0.1:{sms_gateway.port}/?secret={SECRET}"  # '+' and '/' not %-escaped
    with channel_from_url(raw) as channel:
        assert channel.send(message()).status == "sent"
    Webhook(SECRET).verify(sms_gateway.requests[0]["body"], sms_gateway.requests[0]["headers"])


def test_a_channel_made_from_a_masked_url_signs_nothing(sms_gateway) -> None:
    with WebhookChannel(f"webhook+http://127.0.0.1:{sms_gateway.port}/?secret=****") as channel:
        result = channel.send(message())
    assert (result.status, result.detail) == ("permanent", "no secret to sign with: the URL had secret=**** (masked)")
    assert sms_gateway.requests == []


@pytest.mark.parametrize(("url", "error"), [
    ("webhook+https://crm.example.com/hooks", "needs secret="),
    ("webhook+https://crm.example.com/hooks?secret=", "needs secret="),
    ("webhook+https://crm.example.com/hooks?secret=whsec_not-url-safe_base64_at_all_0123456789", "secret must be whsec_"),
    ("webhook+https://crm.example.com/hooks?secret=whsec_c2hvcnQ=", "at least 24 bytes"),
    ("webhook+https:///hooks?secret=x", "needs a host"),
    (f"webhook+https://user:{quote(SECRET, safe='')}@crm.example.com/?secret=x", "takes no user or password"),
    (f"webhook+https://user:{quote(SECRET)}@crm.example.com/?secret=x", "the port is not a number"),  # ('/' unescaped)
    (f"webhook+https://crm.example.com/?secret={quote(SECRET)}&colour=red", "unknown option 'colour'"),
    (f"webhook+https://crm.example.com/?secret={quote(SECRET)}&timeout=0", "timeout must be more than 0"),
    (f"webhook+https://crm.example.com/?secret={quote(SECRET)}&sessions=17", "sessions must be a whole number from 1 to 16"),
    (f"webhook+https://crm.example.com/a b?secret={quote(SECRET)}", "must be %-escaped"),
    (f"webhook+https://crm.example.com/?secret={quote(SECRET)}#x", "fragment"),
    (f"https://crm.example.com/?secret={quote(SECRET)}", "scheme 'https' is not one of webhook"),
])
def test_bad_urls_are_refused_naming_the_option(url, error) -> None:
    with pytest.raises(ChannelConfigError, match=error) as info:
        WebhookChannel(url)
    assert SECRET[6:20] not in str(info.value)
