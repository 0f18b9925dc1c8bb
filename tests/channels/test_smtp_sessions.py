"""SmtpChannel's pool of sessions against a real aiosmtpd server on 127.0.0.1: sends from
several threads at once share at most ``sessions`` connections, reuse them, and a failure
on one session (4xx, a dropped connection) leaves the others alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from channels import ChannelConfigError, DeliveryResult, Outbound, SmtpChannel



def make_email(to: str) -> Any:
    from email.message import EmailMessage
    from email.utils import make_msgid

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "billing@example.com", to, "Your statement"
    message["Message-ID"] = make_msgid(domain="ccm.example.com")
    message.set_content("Hello\n")
    return message


class SlowHandler:
    """Answers DATA after ``delay`` seconds, so that sends from several threads overlap;
    ``busy`` is refused with 451 at RCPT, ``drop`` loses its connection during DATA."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.peers: set[tuple[str, int]] = set()  # one per connection ever made
        self.received: list[str] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # type: ignore[no-untyped-def]
        self.peers.add(session.peer)
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.startswith("busy@"):
            return "451 4.3.0 try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        if envelope.rcpt_tos[0].startswith("drop@"):
            server.transport.close()
            return "451 never seen"
        self.received.append(envelope.rcpt_tos[0])
        return "250 Message accepted for delivery"



@pytest.fixture
def slow_server() -> Iterator[Callable[[float], tuple[SlowHandler, int]]]:
    started: list[Controller] = []

    def start(delay: float = 0.2) -> tuple[SlowHandler, int]:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        handler = SlowHandler(delay)
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        started.append(controller)
        return handler, port

    yield start
    for controller in started:
        controller.stop()


def send_all(channel: SmtpChannel, recipients: list[str], threads: int) -> list[DeliveryResult]:
    """Send one message per recipient from ``threads`` threads that start together."""
    start = threading.Barrier(min(threads, len(recipients)))

    def send(numbered: tuple[int, str]) -> DeliveryResult:
        number, to = numbered
        if number < start.parties:
            start.wait(timeout=10)
        return channel.send(Outbound(f"m{number}", to, make_email(to)))

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, enumerate(recipients)))


def test_sends_from_several_threads_share_the_sessions_and_reuse_them(slow_server: Any) -> None:
    handler, port = slow_server(0.1)
    with SmtpChannel(f"smtp://127.0.0.1:{port}?starttls=off&sessions=4") as channel:
        results = send_all(channel, [f"ok{i}@example.com" for i in range(24)], threads=8)
    assert [r.status for r in results] == ["sent"] * 24
    assert len(handler.received) == 24
    assert len(handler.peers) == 4  # every session used and reused; never more than the URL allows


def test_sequential_sends_keep_one_session(slow_server: Any) -> None:
    handler, port = slow_server(0)
    with SmtpChannel(f"smtp://127.0.0.1:{port}?starttls=off&sessions=4") as channel:
        statuses = [channel.send(Outbound(f"m{i}", "ok@example.com", make_email("ok@example.com"))).status for i in range(5)]
    assert statuses == ["sent"] * 5
    assert len(handler.peers) == 1


def test_sends_wait_for_a_free_session_when_all_are_busy(slow_server: Any) -> None:
    handler, port = slow_server(0.1)
    with SmtpChannel(f"smtp://127.0.0.1:{port}?starttls=off&sessions=2") as channel:
        results = send_all(channel, [f"ok{i}@example.com" for i in range(10)], threads=6)
    assert [r.status for r in results] == ["sent"] * 10
    assert len(handler.peers) == 2


def test_a_4xx_on_one_session_keeps_that_session_and_the_others(slow_server: Any) -> None:
    handler, port = slow_server(0.1)
    recipients = ["busy@example.com" if i % 4 == 1 else f"ok{i}@example.com" for i in range(16)]
    with SmtpChannel(f"smtp://127.0.0.1:{port}?starttls=off&sessions=4") as channel:
        results = send_all(channel, recipients, threads=4)
    for to, result in zip(recipients, results):
        if to.startswith("busy"):
            assert (result.status, result.detail) == ("transient", "451 4.3.0 try later")
        else:
            assert result.status == "sent"
    assert len(handler.received) == 12
    assert len(handler.peers) == 4  # a refused recipient does not cost the session


def test_a_dropped_connection_replaces_only_that_session(slow_server: Any) -> None:
    handler, port = slow_server(0.2)
    with SmtpChannel(f"smtp://127.0.0.1:{port}?starttls=off&sessions=4") as channel:
        first = send_all(channel, [f"ok{i}@example.com" for i in range(4)], threads=4)
        assert len(handler.peers) == 4
        dropped = channel.send(Outbound("gone", "drop@example.com", make_email("drop@example.com")))
        after = send_all(channel, [f"again{i}@example.com" for i in range(4)], threads=4)
    assert [r.status for r in first + after] == ["sent"] * 8
    assert dropped.status == "transient" and "closed" in dropped.detail
    assert len(handler.peers) == 5  # the three others were reused, one new replaced the lost one


def test_close_quits_every_idle_session_and_the_channel_reconnects(slow_server: Any) -> None:
    handler, port = slow_server(0.1)
    channel = SmtpChannel(f"smtp://127.0.0.1:{port}?starttls=off&sessions=3")
    send_all(channel, [f"ok{i}@example.com" for i in range(3)], threads=3)
    channel.close()
    assert channel._open == 0 and channel._idle == []
    assert channel.send(Outbound("later", "ok@example.com", make_email("ok@example.com"))).status == "sent"
    channel.close()
    assert len(handler.peers) == 4


@pytest.mark.parametrize("value", ["0", "17", "two", "-1", ""])
def test_sessions_must_be_between_one_and_the_limit(value: str) -> None:
    with pytest.raises(ChannelConfigError, match="sessions must be a whole number from 1 to 16"):
        SmtpChannel(f"smtp://mail.example.com?sessions={value}")


def test_sessions_round_trip_in_the_url() -> None:
    assert SmtpChannel("smtp://mail.example.com").sessions == SmtpChannel.default_sessions == 4
    channel = SmtpChannel("smtp://mail.example.com?sessions=2")
    assert channel.sessions == 2
    assert channel.url() == "smtp://mail.example.com:25?starttls=auto&timeout=30&sessions=2"
    assert SmtpChannel(channel.url()).url() == channel.url()
    assert "sessions" not in SmtpChannel("smtps://mail.example.com?sessions=4").url()
