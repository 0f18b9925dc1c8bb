"""SMS through an HTTP gateway: a Twilio-compatible messages API or a plain JSON one.

``sms+https://ACCOUNT:TOKEN@api.twilio.com?preset=twilio&from=%2B15550100``
``sms+https://:TOKEN@sms.example.com/v1/messages?preset=json&from=ACME``
``sms+http://...`` is the same without TLS (a gateway on the loopback or a private network).

Options: ``preset`` (``twilio`` or ``json``; default ``json``), ``from`` (the sender: a
number or an alphanumeric sender id; required), ``connect_timeout`` (default 5) and
``read_timeout`` (default 10) in seconds, ``sessions`` (kept-alive connections, 1 to 16,
default 4: how many sends may run at once from different threads). Twilio only:
``account`` (the account SID when the user is an API key SID) and ``status_callback``
(the URL the provider posts delivery receipts to).

- ``twilio``: a form POST to ``<path>/2010-04-01/Accounts/<account>/Messages.json`` with
  ``To``, ``From``, ``Body`` and ``StatusCallback`` (if set), HTTP basic auth
  ``ACCOUNT:TOKEN``; the answer's ``sid`` is the provider id.
- ``json``: a JSON POST of ``{"to", "from", "text", "reference"}`` to ``<path>`` with
  ``Authorization: Bearer TOKEN`` (none without a token) and ``Idempotency-Key: <reference>``;
  the answer's ``id`` (or ``message_id``) is the provider id. ``reference`` is the engine's
  message id.

The text goes whole in one request (the provider splits and concatenates it); the segment
count the engine computed (``Outbound.meta["segments"]``) is reported in ``detail``.

Answers: 2xx is sent (without a usable id in the answer, the provider id is the engine's
reference); 408, 429 and 5xx are transient, with ``retry_after`` from ``Retry-After``;
other answers (4xx, an unfollowed redirect) are permanent. No answer (refused, timed out,
TLS failure, connection dropped before or during the answer) is transient. ``detail`` holds
the HTTP status and the provider's error code, never the number, the text or the token.

Callbacks (``parse_inbound``): the engine's own format (``{"events": [...]}``,
``channels.callback_events``) for either preset, and the provider's own:

- ``twilio``: the status callback's fields (``MessageSid``, ``MessageStatus``: delivered ->
  delivered; undelivered, failed -> failed, permanent for error 30005 unknown handset and
  30006 landline; other statuses are nothing to record) and an incoming message
  (``MessageSid``, ``From``, ``Body``) -> reply. An ``AccountSid`` must be this channel's.
- ``json``: one object or a list of them: a receipt ``{"id", "reference"?, "status",
  "error"?, "permanent"?, "at"?}`` (delivered -> delivered; failed, undelivered, rejected,
  expired -> failed; others are nothing to record) or an incoming message
  ``{"id", "from", "text", "at"?}`` -> reply.

Twilio posts its callbacks as forms signed with ``X-Twilio-Signature``: ``verify_callback``
checks one with the auth token of the twilio preset's URL (the json preset signs none so).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import ssl
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlencode

from .base import Channel, ChannelConfigError, DeliveryResult, Outbound
from .callback_events import InboundError, parse_events
from .http_post import Answer, HttpPool, check_path, failed_answer, token
from .http_post import retry_after as retry_after  # (its home before channels.http_post)
from .sms_checks import sms_problem
from .urls import MASK, count_option, format_number, query_options, seconds_option, split_url

log = logging.getLogger(__name__)

PRESETS = ("twilio", "json")
TWILIO_HARD_ERRORS = frozenset({"30005", "30006"})  # unknown handset; landline or unreachable carrier


class SmsHttpChannel(Channel):
    name: ClassVar[str] = "sms-http"
    kind: ClassVar[str] = "sms"
    schemes: ClassVar[tuple[str, ...]] = ("sms+http", "sms+https")
    max_body: ClassVar[int | None] = 1600
    max_sessions: ClassVar[int] = 16
    default_sessions: ClassVar[int] = 4
    default_ports: ClassVar[dict[str, int]] = {"sms+http": 80, "sms+https": 443}

    def __init__(self, url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = split_url(url, self.schemes, self.name)
        self.scheme = parts.scheme.lower()
        if not parts.hostname:
            raise ChannelConfigError(f"{self.name} URL needs a host, e.g. sms+https://api.twilio.com")
        self.host = parts.hostname
        self.port = parts.port or self.default_ports[self.scheme]
        self.path = check_path(parts.path, self.name)
        options = query_options(
            parts, ["preset", "from", "account", "status_callback", "connect_timeout", "read_timeout", "sessions"],
            self.name,
        )
        self.preset = options.get("preset", "json")
        if self.preset not in PRESETS:
            raise ChannelConfigError(f"{self.name} URL: preset must be one of {', '.join(PRESETS)}")
        self.sender = options.get("from", "")
        if not self.sender.strip():
            raise ChannelConfigError(f"{self.name} URL needs from=, the sender (e.g. from=%2B15550100)")
        self.user = _unquote(parts.username)
        self.password = _unquote(parts.password)
        self.account = options.get("account")
        self.status_callback = options.get("status_callback")
        self._check_preset_options()
        self.connect_timeout = seconds_option(options.get("connect_timeout", "5"), "connect_timeout", "sms-http")
        self.read_timeout = seconds_option(options.get("read_timeout", "10"), "read_timeout", "sms-http")
        self.sessions = count_option(options.get("sessions", str(self.default_sessions)), "sessions", self.name,
                                     self.max_sessions)
        self._pool = HttpPool(self.host, self.port, tls=self.scheme == "sms+https", connect_timeout=self.connect_timeout,
                              read_timeout=self.read_timeout, size=self.sessions, peer="gateway", ssl_context=ssl_context)

    def _check_preset_options(self) -> None:
        if self.preset == "twilio":
            if not self.user or not self.password:
                raise ChannelConfigError(f"{self.name} URL: preset twilio needs ACCOUNT:TOKEN@ before the host")
            if self.status_callback is not None and not re.match(r"https?://[^/?#\s]+", self.status_callback):
                raise ChannelConfigError(f"{self.name} URL: status_callback must be an http(s):// URL")
            return
        if self.user:  # a token in the user part would be shown unmasked
            raise ChannelConfigError(f"{self.name} URL: preset json takes the token as the password, :TOKEN@host")
        for option in ("account", "status_callback"):
            if getattr(self, option) is not None:
                raise ChannelConfigError(f"{self.name} URL: option {option!r} is for preset twilio")

    def url(self, privacy: bool = True) -> str:
        secret = MASK if privacy else quote(self.password or "", safe="")
        auth = f":{secret}@" if self.password else ""  # (json: the token)
        if self.preset == "twilio":
            auth = f"{quote(self.user or '', safe='')}{auth}"
        options = {"preset": self.preset, "from": self.sender}
        if self.account is not None:
            options["account"] = self.account
        if self.status_callback is not None:
            options["status_callback"] = self.status_callback
        options["connect_timeout"] = format_number(self.connect_timeout)
        options["read_timeout"] = format_number(self.read_timeout)
        if self.sessions != self.default_sessions:
            options["sessions"] = str(self.sessions)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}{self.path}?{urlencode(options)}"

    # ------------------------------------------------------------------ sending

    def send(self, out: Outbound) -> DeliveryResult:
        problem = sms_problem(out, self.max_body)
        if problem:
            return DeliveryResult("permanent", detail=problem)
        path, headers, body = self._request(out)
        answer = self._pool.post(path, headers, body)
        result = self._classify(answer, out) if isinstance(answer, Answer) else answer
        if result.status == "sent":
            log.debug("sms-http %s: sent %s as %s", self.url(), out.message_id, result.provider_id)
        else:
            log.warning("sms-http %s: %s %s (message %s)", self.url(), result.status, result.detail, out.message_id)
        return result

    def close(self) -> None:
        """Close the idle connections (all of them once no send is running); the channel
        stays usable and connects again on the next send."""
        self._pool.close()

    def _request(self, out: Outbound) -> tuple[str, dict[str, str], bytes]:
        assert isinstance(out.content, str)
        headers = {"Accept": "application/json", "User-Agent": "ccm-engine sms-http"}
        if self.preset == "twilio":
            account = self.account or self.user or ""
            path = f"{self.path.rstrip('/')}/2010-04-01/Accounts/{quote(account, safe='')}/Messages.json"
            form = {"To": out.to, "From": self.sender, "Body": out.content}
            if self.status_callback:
                form["StatusCallback"] = self.status_callback
            credentials = f"{self.user}:{self.password or ''}".encode("utf-8")
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return path, headers, urlencode(form).encode("ascii")
        payload = {"to": out.to, "from": self.sender, "text": out.content, "reference": out.message_id}
        if self.password:
            headers["Authorization"] = f"Bearer {self.password}"
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = out.message_id
        return self.path or "/", headers, json.dumps(payload, ensure_ascii=False).encode("utf-8")

    def _classify(self, answer: Answer, out: Outbound) -> DeliveryResult:
        if 200 <= answer.status < 300:
            return self._sent(answer.json(), out)
        return failed_answer(answer, out.to, self.password or "")

    def _sent(self, data: dict[str, Any], out: Outbound) -> DeliveryResult:
        keys = ("sid",) if self.preset == "twilio" else ("id", "message_id")
        provider_id = next((token(data.get(key)) for key in keys if token(data.get(key))), None)
        notes = []
        segments = out.meta.get("segments")
        if isinstance(segments, int):
            counted = token(data.get("num_segments"))
            noted = f"{segments} segment{'s' if segments != 1 else ''}"
            if counted is not None and counted != str(segments):
                noted += f" (gateway counts {counted[:6]})"
            notes.append(noted)
        if provider_id is None:
            notes.append("no message id in the answer")
        return DeliveryResult("sent", provider_id=provider_id or out.message_id, detail=", ".join(notes))

    # ------------------------------------------------------------------ callbacks

    def parse_inbound(self, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Receipts and replies, in the engine's format or the preset's (module docstring)."""
        if isinstance(payload, Mapping) and "events" in payload:
            return parse_events(payload, "sms")
        if self.preset == "twilio":
            if not isinstance(payload, Mapping):
                raise InboundError("twilio callback: expected an object of the callback's fields")
            events = _twilio_events(payload, self.account or self.user or "")
        else:
            items = payload if isinstance(payload, list) else [payload]
            events = [event for number, item in enumerate(items, start=1) for event in _json_events(item, number)]
        return parse_events({"events": events}, "sms")

    def verify_callback(self, url: str, params: Mapping[str, str] | list[tuple[str, str]], signature: str | None) -> bool:
        """Whether a form callback is the provider's: for the twilio preset, its
        ``X-Twilio-Signature`` (``twilio_signature``) made with this channel's auth token (the
        URL's password) over ``url``, the public URL the provider called with its query string,
        and ``params``, the form's fields as (name, value) pairs (a name sent twice, twice),
        compared in constant time. Always False for the json preset, whose gateways sign their
        JSON as the engine does."""
        if self.preset != "twilio" or not signature or not self.password:
            return False
        given = signature.strip().encode("utf-8", "replace")
        fields = list(params.items() if isinstance(params, Mapping) else params)
        matches = [hmac.compare_digest(twilio_signature(self.password, called, fields).encode("ascii"), given)
                   for called in _twilio_urls(url)]
        return any(matches)


def twilio_signature(token: str, url: str, params: Mapping[str, str] | list[tuple[str, str]]) -> str:
    """Twilio's ``X-Twilio-Signature`` of a form POST, as its "Webhooks security" guide
    (twilio.com/docs/usage/webhooks/webhooks-security) describes it: the full URL Twilio called
    (query string included), then each POST parameter sorted by name, the name immediately
    followed by its value (a name sent with several values: each of them, sorted, as Twilio's
    helper libraries do); HMAC-SHA1 of that, keyed with the account's auth token, in base64."""
    pairs = sorted(params.items() if isinstance(params, Mapping) else params)
    signed = url + "".join(name + value for name, value in pairs)
    return base64.b64encode(hmac.new(token.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()).decode("ascii")


_HTTP_URL = re.compile(r"(?i)(https?)://([^/?#]*?)(?::(\d*))?([/?#].*)?")


def _twilio_urls(url: str) -> list[str]:
    """The URL as given, without its port, and with the scheme's default port where it names
    none: Twilio signs a URL with or without its port, and its helper libraries accept either."""
    match = _HTTP_URL.fullmatch(url)
    if not match:
        return [url]
    scheme, host, port, rest = match.group(1), match.group(2), match.group(3), match.group(4) or ""
    default = "443" if scheme.lower() == "https" else "80"
    return list(dict.fromkeys([url, f"{scheme}://{host}{rest}", f"{scheme}://{host}:{port or default}{rest}"]))



def _twilio_events(payload: Mapping[str, Any], account: str) -> list[dict[str, Any]]:
    sid = _text(payload.get("MessageSid")) or _text(payload.get("SmsSid"))
    if not sid:
        raise InboundError("twilio callback: MessageSid missing")
    sent_to = _text(payload.get("AccountSid"))
    if sent_to and sent_to != account:
        raise InboundError("twilio callback: AccountSid is not this channel's account")
    status = (_text(payload.get("MessageStatus")) or _text(payload.get("SmsStatus"))).lower()
    if status == "received" or (not status and "Body" in payload):
        return [{"id": sid, "type": "reply", "from": payload.get("From"), "text": payload.get("Body")}]
    if not status:
        raise InboundError("twilio callback: neither MessageStatus nor Body")
    if status not in ("delivered", "undelivered", "failed"):
        return []  # queued, sending, sent, ...: on its way, nothing to record
    event: dict[str, Any] = {"id": f"{sid}:{status}", "type": "delivered" if status == "delivered" else "failed",
                             "message": sid, "status": status}
    error = _text(payload.get("ErrorCode"))
    if error and status != "delivered":
        event["reason"] = f"error {error}"
        event["permanent"] = error in TWILIO_HARD_ERRORS
    return [event]


def _json_events(item: Any, number: int) -> list[dict[str, Any]]:
    where = f"callback {number}"
    if not isinstance(item, Mapping):
        raise InboundError(f"{where}: not an object")
    ident = _text(item.get("id"))
    if not ident:
        raise InboundError(f"{where}: id missing")
    if "status" not in item:
        if "from" not in item:
            raise InboundError(f"{where}: expected a receipt (id, status) or a message (id, from, text)")
        return [{"id": ident, "type": "reply", "from": item.get("from"), "text": item.get("text"), "at": item.get("at")}]
    status = _text(item.get("status")).lower()
    if status not in ("delivered", "failed", "undelivered", "rejected", "expired"):
        return []  # accepted, queued, sent, ...: nothing to record
    event: dict[str, Any] = {"id": f"{ident}:{status}", "type": "delivered" if status == "delivered" else "failed",
                             "message": _text(item.get("reference")) or ident, "status": status, "at": item.get("at")}
    if status != "delivered":
        error = _text(item.get("error"))
        if error:
            event["reason"] = f"error {error}"
        event["permanent"] = item.get("permanent", False)
    return [event]


def _text(value: Any) -> str:
    """A callback field as a string ('' when absent); numbers are taken as their digits."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, str)):
        return str(value).strip()
    return ""


def _unquote(value: str | None) -> str | None:
    return None if value is None else unquote(value)
