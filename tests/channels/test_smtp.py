"""SmtpChannel against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import email
import ssl
from email import policy
from typing import Any

import pytest

from channels import ChannelConfigError, Outbound, SmtpChannel

PASSWORD = "s3cret-Pa55"


def send_to(channel: SmtpChannel, to: str, make_email: Any, message_id: str = "m1") -> Any:
    return channel.send(Outbound(message_id, to, make_email(to)))


def test_one_connection_is_reused_for_many_sends(smtp_server: Any, email_factory: Any) -> None:
    server = smtp_server()
    with SmtpChannel(server.url()) as channel:
        results = [send_to(channel, "ok@example.com", email_factory, f"m{i}") for i in range(5)]
    assert [r.status for r in results] == ["sent"] * 5
    assert len(server.handler.messages) == 5
    assert len(server.handler.peers) == 1


def test_reconnects_after_the_server_dropped_mid_transaction(
    smtp_server: Any, email_factory: Any
) -> None:
    server = smtp_server()
    with SmtpChannel(server.url()) as channel:
        assert send_to(channel, "ok@example.com", email_factory).status == "sent"
        assert send_to(channel, "drop@example.com", email_factory).status == "transient"
        assert send_to(channel, "ok@example.com", email_factory).status == "sent"
    assert len(server.handler.peers) == 2


def test_reconnects_silently_when_the_server_hung_up_an_idle_connection(
    smtp_server: Any, email_factory: Any
) -> None:
    server = smtp_server()
    with SmtpChannel(server.url()) as channel:
        assert send_to(channel, "ok@example.com", email_factory).status == "sent"
        server.hang_up_idle()
        assert send_to(channel, "ok@example.com", email_factory).status == "sent"
    assert len(server.handler.peers) == 2


def test_message_id_is_preserved_and_is_the_provider_id(
    smtp_server: Any, email_factory: Any
) -> None:
    server = smtp_server()
    message = email_factory("ok@example.com")
    with SmtpChannel(server.url()) as channel:
        result = channel.send(Outbound("m1", "ok@example.com", message))
    received = email.message_from_bytes(server.handler.messages[0], policy=policy.default)
    assert received["Message-ID"] == message["Message-ID"]
    assert result.provider_id == message["Message-ID"]


def test_queue_id_from_the_250_reply_becomes_the_provider_id(
    smtp_server: Any, email_factory: Any
) -> None:
    server = smtp_server()
    with SmtpChannel(server.url()) as channel:
        result = send_to(channel, "queued@example.com", email_factory)
    assert result == result.__class__("sent", provider_id="4QX7Yz1")


def test_starttls_required_with_a_trusted_self_signed_cert(
    smtp_server: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext, email_factory: Any
) -> None:
    server = smtp_server(tls_context=server_tls, require_starttls=True)
    url = server.url(query="starttls=required")
    with SmtpChannel(url, ssl_context=client_tls) as channel:
        assert send_to(channel, "ok@example.com", email_factory).status == "sent"
    assert len(server.handler.messages) == 1


def test_implicit_tls_smtps(
    smtp_server: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext, email_factory: Any
) -> None:
    server = smtp_server(ssl_context=server_tls)
    with SmtpChannel(server.url("smtps", query="timeout=5"), ssl_context=client_tls) as channel:
        assert send_to(channel, "ok@example.com", email_factory).status == "sent"


@pytest.mark.parametrize(("excluded", "used"), [("LOGIN", "PLAIN"), ("PLAIN", "LOGIN")])
def test_auth_over_starttls_and_password_never_shown(
    excluded: str,
    used: str,
    smtp_server: Any,
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
    email_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="channels")
    server = smtp_server(
        tls_context=server_tls, require_starttls=True, with_auth=True, auth_required=True,
        auth_exclude_mechanism=[excluded],
    )
    url = server.url(auth=f"mailer:{PASSWORD}@", query="starttls=required")
    with SmtpChannel(url, ssl_context=client_tls) as channel:
        assert send_to(channel, "ok@example.com", email_factory).status == "sent"
        assert send_to(channel, "busy@example.com", email_factory).status == "transient"
        assert PASSWORD not in channel.url() and "****" in channel.url()
        assert PASSWORD not in repr(channel)
    assert server.handler.mechanisms == [used]
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("channels")]
    assert ours and not any(PASSWORD in line for line in ours)


def test_detail_never_echoes_the_address(smtp_server: Any, email_factory: Any) -> None:
    server = smtp_server()
    with SmtpChannel(server.url()) as channel:
        result = send_to(channel, "reject@example.com", email_factory)
    assert result.status == "permanent"
    assert result.detail.startswith("550 5.1.1") and "example.com" not in result.detail


def test_message_over_max_body_is_permanent(smtp_server: Any, email_factory: Any) -> None:
    class TinySmtp(SmtpChannel):
        max_body = 100

    with TinySmtp(smtp_server().url()) as channel:
        result = send_to(channel, "ok@example.com", email_factory)
    assert result.status == "permanent" and "larger than 100" in result.detail


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smtp://:25", "needs a host"),
        ("smtp://h:99999", "Port out of range"),
        ("smtp://h?starttls=maybe", "starttls must be one of"),
        ("smtp://h?timeout=-1", "timeout must be positive"),
        ("smtp://h?tls=1", "unknown option 'tls'"),
        ("smtps://h?starttls=auto", "unknown option 'starttls'"),
        ("http://h", "is not one of"),
    ],
)
def test_bad_urls_fail_at_once_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ChannelConfigError, match=problem):
        SmtpChannel(url)


def test_password_with_special_characters_round_trips() -> None:
    channel = SmtpChannel("smtp://us%40er:p%40ss%3Aw%2Ford@mail.example.com:587")
    assert channel.user == "us@er" and channel.password == "p@ss:w/ord"
    assert SmtpChannel(channel.url(privacy=False)).password == "p@ss:w/ord"
    assert channel.url() == "smtp://us%40er:****@mail.example.com:587?starttls=auto&timeout=30"
