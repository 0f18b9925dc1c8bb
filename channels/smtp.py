"""E-mail over SMTP: one reused connection, STARTTLS or implicit TLS, AUTH.

``smtp://user:pass@host:587?starttls=auto|required|off&timeout=30&helo=name``
``smtps://user:pass@host:465?timeout=30&helo=name`` (implicit TLS)

The connection is opened at the first send and kept; before reuse a zero-cost check
notices a server that hung up (or said 421) while idle, and a fresh connection is made.
A failure during a send discards the connection; the next send reconnects.
"""

from __future__ import annotations

import logging
import re
import select
import smtplib
import ssl
from email.message import EmailMessage
from typing import ClassVar
from urllib.parse import unquote

from .base import Channel, ChannelConfigError, DeliveryResult, Outbound
from .redact import os_error_detail, redact
from .urls import query_options, server_url, split_url

log = logging.getLogger(__name__)

_QUEUE_ID = re.compile(r"queued as ([\w.\-]+)|\bid=([\w.\-]+)", re.IGNORECASE)
_STARTTLS = ("auto", "required", "off")


class _SMTP(smtplib.SMTP):
    """Keeps the server's reply to DATA, which ``send_message`` throws away."""

    last_data_reply: bytes = b""

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
    default_ports: ClassVar[dict[str, int]] = {"smtp": 25, "smtps": 465}

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
        allowed = ["timeout", "helo"] + (["starttls"] if self.scheme == "smtp" else [])
        options = query_options(parts, allowed, self.name)
        self.starttls = options.get("starttls", "auto") if self.scheme == "smtp" else "off"
        if self.starttls not in _STARTTLS:
            raise ChannelConfigError(f"smtp URL: starttls must be one of {', '.join(_STARTTLS)}")
        self.timeout = _positive_float(options.get("timeout", "30"), "timeout")
        self.helo = options.get("helo") or None
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._smtp: _SMTP | None = None

    def url(self, privacy: bool = True) -> str:
        options = {"timeout": _format_number(self.timeout)}
        if self.scheme == "smtp":
            options = {"starttls": self.starttls, **options}
        if self.helo:
            options["helo"] = self.helo
        return server_url(
            self.scheme, self.host, self.port, self.user, self.password, options, privacy
        )

    def send(self, out: Outbound) -> DeliveryResult:
        problem = self._check_content(out)
        if problem:
            return DeliveryResult("permanent", detail=problem)
        try:
            smtp = self._connection()
        except _ConnectFailed as exc:
            log.warning("smtp %s: %s (message %s)", self.url(), exc.detail, out.message_id)
            return DeliveryResult("transient", detail=exc.detail)
        result = self._send_on(smtp, out)
        if result.status != "sent":
            log.warning(
                "smtp %s: %s %s (message %s)",
                self.url(), result.status, result.detail, out.message_id,
            )
        return result

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def _check_content(self, out: Outbound) -> str:
        if not isinstance(out.content, EmailMessage):
            return "content is not an EmailMessage"
        if not out.content["Message-ID"]:
            return "message has no Message-ID header"
        if self.max_body is not None and len(out.content.as_bytes()) > self.max_body:
            return f"message larger than {self.max_body} bytes"
        return ""

    def _send_on(self, smtp: _SMTP, out: Outbound) -> DeliveryResult:
        assert isinstance(out.content, EmailMessage)
        message_id = str(out.content["Message-ID"])
        secrets = (out.to, self.password or "")
        try:
            smtp.last_data_reply = b""
            smtp.send_message(out.content, to_addrs=[out.to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (451, b"recipient refused"))
            return _classify(code, reply, secrets)
        except smtplib.SMTPResponseException as exc:  # sender refused, data error, 421...
            if exc.smtp_code == 421 or exc.smtp_code < 400:
                self._discard()
            return _classify(exc.smtp_code, exc.smtp_error, secrets)
        except smtplib.SMTPNotSupportedError:
            return DeliveryResult("permanent", detail="server lacks SMTPUTF8 for this message")
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, timeout, reset
            self._discard()
            return DeliveryResult("transient", detail=_connection_detail(exc))
        except ValueError:  # non-ASCII address without SMTPUTF8, bad Resent- headers
            return DeliveryResult("permanent", detail="message cannot be sent as SMTP")
        match = _QUEUE_ID.search(smtp.last_data_reply.decode("utf-8", "replace"))
        provider_id = (match.group(1) or match.group(2)) if match else message_id
        return DeliveryResult("sent", provider_id=provider_id)

    def _connection(self) -> _SMTP:
        if self._smtp is not None and _still_open(self._smtp):
            return self._smtp
        self._discard()
        self._smtp = self._connect()
        return self._smtp

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

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        _drop(smtp)


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


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
