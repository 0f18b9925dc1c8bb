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
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import http.client
import json
import logging
import re
import select
import ssl
import threading
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlencode

from .base import Channel, ChannelConfigError, DeliveryResult, Outbound
from .callback_events import InboundError, parse_events
from .redact import os_error_detail, redact
from .sms_checks import sms_problem
from .urls import MASK, format_number, query_options, seconds_option, split_url

log = logging.getLogger(__name__)

PRESETS = ("twilio", "json")
MAX_ANSWER = 64 * 1024  # bytes of an answer read; a longer one is not parsed
_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_TOKEN = re.compile(r"[\x21-\x7e]{1,150}")  # a provider id or error code: printable, no spaces
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.:\-]{1,40}")
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
        self.path = parts.path
        if not _PATH.fullmatch(self.path):
            raise ChannelConfigError(f"{self.name} URL: the path has characters that must be %-escaped")
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
        self.sessions = _sessions(options.get("sessions", str(self.default_sessions)), self.max_sessions)
        self._ssl_context = ssl_context  # the system's trust store when None, loaded on first connect
        self._idle: list[http.client.HTTPConnection] = []  # kept-alive connections nobody is sending on
        self._open = 0  # connections open or being used, idle or not
        self._pool = threading.Condition()

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
        conn = self._checkout()
        reusable = False
        try:
            status, answer_headers, answer, reusable = self._exchange(conn, path, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            result = DeliveryResult("transient", detail=_connection_detail(exc))
        except ValueError:  # a header or host name http.client cannot encode
            result = DeliveryResult("permanent", detail="request cannot be encoded for HTTP")
        else:
            result = self._classify(status, answer_headers, answer, out)
        finally:
            self._checkin(conn, reusable)
        if result.status == "sent":
            log.debug("sms-http %s: sent %s as %s", self.url(), out.message_id, result.provider_id)
        else:
            log.warning("sms-http %s: %s %s (message %s)", self.url(), result.status, result.detail, out.message_id)
        return result

    def close(self) -> None:
        """Close the idle connections (all of them once no send is running); the channel
        stays usable and connects again on the next send."""
        with self._pool:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._pool.notify_all()
        for conn in idle:
            conn.close()

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

    def _exchange(
        self, conn: http.client.HTTPConnection, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, http.client.HTTPMessage, bytes, bool]:
        """The answer's status, headers and body, and whether the connection can be reused."""
        if conn.sock is None:
            conn.connect()  # within connect_timeout (TLS handshake included)
            conn.sock.settimeout(self.read_timeout)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        if response.length is not None and response.length <= MAX_ANSWER:
            answer = response.read()  # IncompleteRead if the gateway hangs up mid-answer
        else:
            answer = response.read(MAX_ANSWER)
        reusable = response.isclosed() and not response.will_close
        return response.status, response.headers, answer, reusable

    def _classify(self, status: int, headers: http.client.HTTPMessage, answer: bytes, out: Outbound) -> DeliveryResult:
        data = _json_object(answer)
        if 200 <= status < 300:
            return self._sent(data, out)
        detail = f"HTTP {status}"
        code = _error_code(data)
        if code:
            detail += f", error {code}"
        detail = redact(detail, out.to, self.password or "")
        if status in (408, 429) or 500 <= status < 600:
            return DeliveryResult("transient", detail=detail, retry_after=retry_after(headers.get("Retry-After")))
        if 300 <= status < 400:
            detail += " (redirects are not followed)"
        return DeliveryResult("permanent", detail=detail)

    def _sent(self, data: dict[str, Any], out: Outbound) -> DeliveryResult:
        keys = ("sid",) if self.preset == "twilio" else ("id", "message_id")
        provider_id = next((_token(data.get(key)) for key in keys if _token(data.get(key))), None)
        notes = []
        segments = out.meta.get("segments")
        if isinstance(segments, int):
            counted = _token(data.get("num_segments"))
            noted = f"{segments} segment{'s' if segments != 1 else ''}"
            if counted is not None and counted != str(segments):
                noted += f" (gateway counts {counted[:6]})"
            notes.append(noted)
        if provider_id is None:
            notes.append("no message id in the answer")
        return DeliveryResult("sent", provider_id=provider_id or out.message_id, detail=", ".join(notes))

    # ------------------------------------------------------------------ the connections

    def _checkout(self) -> http.client.HTTPConnection:
        """An idle connection still open, else a new (unconnected) one while fewer than
        ``sessions`` are in use, else wait for one to be given back."""
        with self._pool:
            while True:
                while self._idle:
                    conn = self._idle.pop()
                    if _still_open(conn):
                        return conn
                    self._open -= 1
                    conn.close()
                if self._open < self.sessions:
                    self._open += 1
                    break
                self._pool.wait()
        if self.scheme == "sms+https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.connect_timeout, context=self._ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)

    def _checkin(self, conn: http.client.HTTPConnection, reusable: bool) -> None:
        with self._pool:
            if reusable:
                self._idle.append(conn)
            else:
                self._open -= 1
            self._pool.notify()
        if not reusable:
            conn.close()

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


def retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, round((when - now).total_seconds(), 3))


def _json_object(answer: bytes) -> dict[str, Any]:
    try:
        data = json.loads(answer)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _token(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def _error_code(data: dict[str, Any]) -> str | None:
    """The provider's error code (Twilio ``code``, or ``code``/``error``/``error_code``), only
    if it looks like a code: its free-text message may quote the number or the text."""
    for key in ("code", "error_code", "error"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
            return value
    return None


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection has nothing to read; EOF means the gateway closed it."""
    sock = conn.sock
    if sock is None:
        return True  # never connected: connects on use
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _connection_detail(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "gateway closed the connection without answering"
    if isinstance(exc, http.client.IncompleteRead):
        return "gateway closed the connection mid-answer"
    if isinstance(exc, http.client.HTTPException):
        return f"malformed answer from gateway ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno < 0:
        return "cannot resolve the gateway's host name"  # socket.gaierror
    if isinstance(exc, OSError):
        return os_error_detail(exc, "cannot reach gateway")
    return type(exc).__name__


def _unquote(value: str | None) -> str | None:
    return None if value is None else unquote(value)



def _sessions(value: str, most: int) -> int:
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise ChannelConfigError(f"sms-http URL: sessions must be a whole number from 1 to {most}")
    return int(value)

