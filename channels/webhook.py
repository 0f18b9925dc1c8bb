"""Messages POSTed as signed JSON to another system (a CRM, a push service).

``webhook+https://crm.example.com/hooks/ccm?secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw``
``webhook+http://...`` is the same without TLS (a receiver on the loopback or a private
network). The request goes to the URL without ``webhook+`` and without the query.

Options: ``secret`` (required: the receiver's Standard Webhooks secret, ``whsec_`` and
base64, or the base64 alone, at least 24 bytes; a ``+`` that the query reads as a space is
taken as ``+``), ``timeout`` (seconds to connect and to wait for the answer, default 10),
``sessions`` (kept-alive connections, 1 to 16, default 4: how many sends may run at once).

Body: compact UTF-8 JSON ``{"message_id", "to", "content": {"subject", "text", "html"},
"meta"}``, at most ``max_body`` bytes. Signed the Standard Webhooks way: ``webhook-id`` (the
message id, the same at every retry, so the receiver can drop repeats),
``webhook-timestamp`` and ``webhook-signature`` (``v1,`` base64 HMAC-SHA256 of
``id.timestamp.body``).

Answers are classified as ``sms-http`` does (``channels.http_post``): 2xx is sent (the
provider id is the answer's JSON ``id`` when it has a usable one, else the message id);
408, 429 and 5xx are transient, with ``retry_after``; other answers are permanent; no
answer (refused, timed out, TLS failure, dropped connection) is transient. Neither
``detail`` nor the log hold the recipient, the body or the secret.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import ssl
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import urlencode

from standardwebhooks import Webhook

from .base import Channel, ChannelConfigError, DeliveryResult, Outbound
from .http_post import Answer, HttpPool, check_path, failed_answer, token
from .rendered import encoded, rendered_problem
from .urls import MASK, count_option, format_number, query_options, seconds_option, split_url

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the Standard Webhooks specification's lower bound


class WebhookChannel(Channel):
    name: ClassVar[str] = "webhook"
    kind: ClassVar[str] = "webhook"
    schemes: ClassVar[tuple[str, ...]] = ("webhook+http", "webhook+https")
    max_body: ClassVar[int | None] = 256 * 1024
    max_sessions: ClassVar[int] = 16
    default_sessions: ClassVar[int] = 4
    default_ports: ClassVar[dict[str, int]] = {"webhook+http": 80, "webhook+https": 443}

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = split_url(url, self.schemes, self.name)
        self.scheme = parts.scheme.lower()
        if not parts.hostname:
            raise ChannelConfigError(f"{self.name} URL needs a host, e.g. webhook+https://crm.example.com/hooks")
        if parts.username is not None or parts.password is not None:
            raise ChannelConfigError(f"{self.name} URL takes no user or password before the host; the secret goes in secret=")
        self.host = parts.hostname
        self.port = parts.port or self.default_ports[self.scheme]
        self.path = check_path(parts.path or "/", self.name)
        options = query_options(parts, ["secret", "timeout", "sessions"], self.name)
        self._secret = _secret(options.get("secret"), self.name)  # None: made from a URL with the secret masked
        self._signer = Webhook(self._secret) if self._secret else None
        self.timeout = seconds_option(options.get("timeout", "10"), "timeout", self.name)
        self.sessions = count_option(options.get("sessions", str(self.default_sessions)), "sessions", self.name,
                                     self.max_sessions)
        self._pool = HttpPool(self.host, self.port, tls=self.scheme == "webhook+https", connect_timeout=self.timeout,
                              read_timeout=self.timeout, size=self.sessions, peer="receiver", ssl_context=ssl_context)

    def url(self, privacy: bool = True) -> str:
        options = {"secret": MASK if privacy or not self._secret else self._secret, "timeout": format_number(self.timeout)}
        if self.sessions != self.default_sessions:
            options["sessions"] = str(self.sessions)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}?{urlencode(options, safe='*')}"

    def send(self, out: Outbound) -> DeliveryResult:
        result = self._post(out)
        if result.status == "sent":
            log.debug("webhook %s: sent %s as %s", self.url(), out.message_id, result.provider_id)
        else:
            log.warning("webhook %s: %s %s (message %s)", self.url(), result.status, result.detail, out.message_id)
        return result

    def close(self) -> None:
        """Close the idle connections; the channel connects again on the next send."""
        self._pool.close()

    def _post(self, out: Outbound) -> DeliveryResult:
        problem = rendered_problem(out)
        if problem is None and self._signer is None:
            problem = "no secret to sign with: the URL had secret=**** (masked)"
        if problem:
            return DeliveryResult("permanent", detail=problem)
        assert isinstance(out.content, Mapping)
        payload = {"message_id": out.message_id, "to": out.to, "content": dict(out.content), "meta": dict(out.meta)}
        body = encoded(payload, self.max_body, "body")
        if isinstance(body, DeliveryResult):
            return body
        answer = self._pool.post(self.path, self._headers(out.message_id, body), body)
        if not isinstance(answer, Answer):
            return answer
        if not 200 <= answer.status < 300:
            return failed_answer(answer, out.to, self._secret or "")
        return DeliveryResult("sent", provider_id=token(answer.json().get("id")) or out.message_id)

    def _headers(self, message_id: str, body: bytes) -> dict[str, str]:
        assert self._signer is not None
        now = dt.datetime.now(dt.timezone.utc)
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "ccm-engine webhook",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(message_id, now, body),
        }


def _secret(value: str | None, name: str) -> str | None:
    """The secret as given (``whsec_`` and base64, or base64), checked; None for the mask."""
    if value is None or not value.strip():
        raise ChannelConfigError(f"{name} URL needs secret=, the receiver's signing secret (whsec_...)")
    if value == MASK:
        return None
    value = value.replace(" ", "+")  # a '+' not %-escaped in a query string reads as a space
    encoded = value.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ChannelConfigError(
            f"{name} URL: secret must be {SECRET_PREFIX} followed by base64 (A-Z, a-z, 0-9, +, /)") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ChannelConfigError(f"{name} URL: secret must hold at least {MIN_SECRET_BYTES} bytes (base64-encoded)")
    return value
