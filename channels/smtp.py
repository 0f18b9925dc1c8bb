"""E-mail over SMTP: a small pool of reused sessions, STARTTLS or implicit TLS, AUTH.

``smtp://user:pass@host:587?starttls=auto|required|off&timeout=30&helo=name&sessions=4``
``smtps://user:pass@host:465?timeout=30&helo=name&sessions=4`` (implicit TLS)

``sessions`` (1 to ``max_sessions``, default 4) is how many connections the channel keeps
open to the server. ``send`` may be called from that many threads at once: each call
takes an idle session (or opens one while fewer are open, or waits for one) and gives it
back afterwards, so sends are pipelined over the sessions and sequential sends reuse one.
Before reuse a zero-cost check notices a server that hung up (or said 421) while idle,
and a fresh connection is made. A failure that leaves a session unusable (dropped
connection, timeout, 421) discards that session only; the next send reconnects.
"""

from __future__ import annotations

import logging
import re
import select
import smtplib
import ssl
import threading
from email.message import EmailMessage
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import unquote

from .base import Channel, ChannelConfigError, DeliveryResult, Outbound
from .callback_events import parse_events
from .redact import os_error_detail, redact
from .urls import query_options, server_url, split_url

log = logging.getLogger(__name__)

_QUEUE_ID = re.compile(r"queued as ([\w.\-]+)|\bid=([\w.\-]+)", re.IGNORECASE)
_STARTTLS = ("auto", "required", "off")


class _TooLarge(Exception):
    """The message as sent would exceed the channel's ``max_body``."""


class _SMTP(smtplib.SMTP):
    """Keeps the server's reply to DATA, which ``send_message`` throws away, and refuses a
    message over ``max_body`` before MAIL FROM (measured on the bytes ``send_message``
    flattens anyway, so the message is serialised once)."""

    last_data_reply: bytes = b""
    max_body: int | None = None

    def sendmail(self, from_addr, to_addrs, msg, mail_options=(), rcpt_options=()):  # type: ignore[no-untyped-def]
        if self.max_body is not None and len(msg) > self.max_body:
            raise _TooLarge(f"message larger than {self.max_body} bytes")
        return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        code, reply = super().data(msg)
        self.last_data_reply = reply
        return code, reply


class _SMTP_SSL(smtplib.SMTP_SSL, _SMTP):
    pass


class _ConnectFailed(Exception):
    """Connecting, TLS or login failed; ``detail`` is safe to show."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SmtpChannel(Channel):
    name: ClassVar[str] = "smtp"
    kind: ClassVar[str] = "email"
    schemes: ClassVar[tuple[str, ...]] = ("smtp", "smtps")
    rate_per_second: ClassVar[float | None] = 10.0
    max_body: ClassVar[int | None] = 25 * 1024 * 1024
    max_sessions: ClassVar[int] = 16
    default_sessions: ClassVar[int] = 4
    default_ports: ClassVar[dict[str, int]] = {"smtp": 25, "smtps": 465}

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Bounces, complaints and receipts your mail provider posts, in the engine's JSON
        format (``channels.callback_events``); DSN e-mails are read with ``ccm feedback bounces``."""
        return parse_events(payload, "email")

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = split_url(url, self.schemes, self.name)
        self.scheme = parts.scheme.lower()
        if not parts.hostname:
            raise ChannelConfigError("smtp URL needs a host, e.g. smtp://mail.example.com:587")
        self.host = parts.hostname
        self.port = parts.port or self.default_ports[self.scheme]
        self.user = _unquote(parts.username)
        self.password = _unquote(parts.password)
        if parts.path not in ("", "/"):
            raise ChannelConfigError("smtp URL takes no path")
        allowed = ["timeout", "helo", "sessions"] + (["starttls"] if self.scheme == "smtp" else [])
        options = query_options(parts, allowed, self.name)
        self.starttls = options.get("starttls", "auto") if self.scheme == "smtp" else "off"
        if self.starttls not in _STARTTLS:
            raise ChannelConfigError(f"smtp URL: starttls must be one of {', '.join(_STARTTLS)}")
        self.timeout = _positive_float(options.get("timeout", "30"), "timeout")
        self.helo = options.get("helo") or None
        self.sessions = _sessions(options.get("sessions", str(self.default_sessions)), self.max_sessions)
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._idle: list[_SMTP] = []  # open sessions nobody is sending on, most recent last
        self._open = 0  # sessions open or being opened, idle or in use
        self._pool = threading.Condition()

    def url(self, privacy: bool = True) -> str:
        options = {"timeout": _format_number(self.timeout)}
        if self.scheme == "smtp":
            options = {"starttls": self.starttls, **options}
        if self.helo:
            options["helo"] = self.helo
        if self.sessions != self.default_sessions:
            options["sessions"] = str(self.sessions)
        return server_url(
            self.scheme, self.host, self.port, self.user, self.password, options, privacy
        )

    def send(self, out: Outbound) -> DeliveryResult:
        problem = self._check_content(out)
        if problem:
            return DeliveryResult("permanent", detail=problem)
        try:
            smtp = self._checkout()
        except _ConnectFailed as exc:
            log.warning("smtp %s: %s (message %s)", self.url(), exc.detail, out.message_id)
            return DeliveryResult("transient", detail=exc.detail)
        reusable = False
        try:
            result, reusable = self._send_on(smtp, out)
        finally:
            self._checkin(smtp, reusable)
        if result.status != "sent":
            log.warning(
                "smtp %s: %s %s (message %s)",
                self.url(), result.status, result.detail, out.message_id,
            )
        return result

    def close(self) -> None:
        """Quit the idle sessions (all of them once no send is running); the channel stays
        usable and reconnects on the next send."""
        with self._pool:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._pool.notify_all()
        for smtp in idle:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _check_content(self, out: Outbound) -> str:
        if not isinstance(out.content, EmailMessage):
            return "content is not an EmailMessage"
        if not out.content["Message-ID"]:
            return "message has no Message-ID header"
        return ""

    def _send_on(self, smtp: _SMTP, out: Outbound) -> tuple[DeliveryResult, bool]:
        """The outcome, and whether the session can be used again."""
        assert isinstance(out.content, EmailMessage)
        message_id = str(out.content["Message-ID"])
        secrets = (out.to, self.password or "")
        try:
            smtp.last_data_reply = b""
            smtp.send_message(out.content, to_addrs=[out.to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (451, b"recipient refused"))
            return _classify(code, reply, secrets), True
        except smtplib.SMTPResponseException as exc:  # sender refused, data error, 421...
            reusable = not (exc.smtp_code == 421 or exc.smtp_code < 400)
            return _classify(exc.smtp_code, exc.smtp_error, secrets), reusable
        except smtplib.SMTPNotSupportedError:
            return DeliveryResult("permanent", detail="server lacks SMTPUTF8 for this message"), True
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, timeout, reset
            return DeliveryResult("transient", detail=_connection_detail(exc)), False
        except _TooLarge as exc:
            return DeliveryResult("permanent", detail=str(exc)), True
        except ValueError:  # non-ASCII address without SMTPUTF8, bad Resent- headers
            return DeliveryResult("permanent", detail="message cannot be sent as SMTP"), True
        match = _QUEUE_ID.search(smtp.last_data_reply.decode("utf-8", "replace"))
        provider_id = (match.group(1) or match.group(2)) if match else message_id
        return DeliveryResult("sent", provider_id=provider_id), True

    def _checkout(self) -> _SMTP:
        """An idle session still open, else a new one while fewer than ``sessions`` are
        open, else wait for one to be given back."""
        with self._pool:
            while True:
                while self._idle:
                    smtp = self._idle.pop()
                    if _still_open(smtp):
                        return smtp
                    self._open -= 1
                    _drop(smtp)
                if self._open < self.sessions:
                    self._open += 1  # this slot is ours while we connect outside the lock
                    break
                self._pool.wait()
        try:
            return self._connect()
        except BaseException:
            with self._pool:
                self._open -= 1
                self._pool.notify()
            raise

    def _checkin(self, smtp: _SMTP, reusable: bool) -> None:
        with self._pool:
            if reusable:
                self._idle.append(smtp)
            else:
                self._open -= 1
            self._pool.notify()
        if not reusable:
            _drop(smtp)

    def _connect(self) -> _SMTP:
        smtp: _SMTP | None = None
        try:
            if self.scheme == "smtps":
                smtp = _SMTP_SSL(
                    self.host, self.port, local_hostname=self.helo,
                    timeout=self.timeout, context=self.ssl_context,
                )
            else:
                smtp = _SMTP(self.host, self.port, local_hostname=self.helo, timeout=self.timeout)
            smtp.max_body = self.max_body
            smtp.ehlo_or_helo_if_needed()
            self._maybe_starttls(smtp)
            if self.user is not None:
                smtp.login(self.user, self.password or "")
        except smtplib.SMTPAuthenticationError:
            _drop(smtp)
            raise _ConnectFailed("authentication failed") from None
        except smtplib.SMTPNotSupportedError:
            _drop(smtp)
            raise _ConnectFailed("server offers no AUTH") from None
        except _ConnectFailed:
            _drop(smtp)
            raise
        except (smtplib.SMTPException, OSError) as exc:
            _drop(smtp)
            raise _ConnectFailed(_connection_detail(exc)) from None
        log.debug("smtp %s: connected", self.url())
        return smtp

    def _maybe_starttls(self, smtp: _SMTP) -> None:
        if self.starttls == "off":
            return
        if not smtp.has_extn("starttls"):
            if self.starttls == "required":
                raise _ConnectFailed("STARTTLS required but not offered")
            return
        smtp.starttls(context=self.ssl_context)
        smtp.ehlo()


def _still_open(smtp: _SMTP) -> bool:
    """An idle SMTP connection has nothing to read; EOF or a 421 means it is gone."""
    sock = smtp.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _drop(smtp: _SMTP | None) -> None:
    if smtp is not None:
        smtp.close()


def _classify(code: int, reply: bytes | str, secrets: tuple[str, ...]) -> DeliveryResult:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    detail = redact(f"{code} {text}", *secrets)
    if 200 <= code < 300:
        return DeliveryResult("sent", detail=detail)
    if 500 <= code < 600:
        return DeliveryResult("permanent", detail=detail)
    return DeliveryResult("transient", detail=detail)


def _connection_detail(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "timed out"  # smtplib turns a read timeout into SMTPServerDisconnected
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "server closed the connection"
    if isinstance(exc, smtplib.SMTPResponseException):
        return redact(f"{exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace')}")
    if isinstance(exc, OSError):
        return os_error_detail(exc, "cannot reach server")
    return type(exc).__name__


def _unquote(value: str | None) -> str | None:
    return None if value is None else unquote(value)


def _positive_float(value: str, field: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ChannelConfigError(f"smtp URL: {field} must be a number of seconds") from None
    if not number > 0:
        raise ChannelConfigError(f"smtp URL: {field} must be positive")
    return number


def _sessions(value: str, most: int) -> int:
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise ChannelConfigError(f"smtp URL: sessions must be a whole number from 1 to {most}")
    return int(value)


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
