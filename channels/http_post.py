"""POSTing to an HTTP service (an SMS gateway, a webhook receiver) and classifying what came back.

:class:`HttpPool` keeps up to ``size`` kept-alive connections to one host and POSTs on them;
without an answer (refused, timed out, TLS failure, connection dropped before or during
the answer) it returns the failure classified as transient. :func:`failed_answer`
classifies an answer that is not 2xx: 408, 429 and 5xx are transient (with ``retry_after``
from ``Retry-After``), other answers (4xx, an unfollowed redirect) are permanent. Details
name the HTTP status and a code-like error from the answer, never the request.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import json
import re
import select
import ssl
import threading
from dataclasses import dataclass
from typing import Any

from .base import ChannelConfigError, DeliveryResult
from .redact import os_error_detail, redact

MAX_ANSWER = 64 * 1024  # bytes of an answer read; a longer one is not parsed
_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_TOKEN = re.compile(r"[\x21-\x7e]{1,150}")  # a provider id or error code: printable, no spaces
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.:\-]{1,40}")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes  # at most MAX_ANSWER bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; ``{}`` when it is not one."""
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}


class HttpPool:
    """Kept-alive connections to ``host:port``, at most ``size`` open at once (the sends
    of other threads wait for one); ``peer`` names the other side in details."""

    def __init__(self, host: str, port: int, *, tls: bool, connect_timeout: float, read_timeout: float,
                 size: int, peer: str, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.tls, self.size, self.peer = host, port, tls, size, peer
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._ssl_context = ssl_context  # the system's trust store when None, loaded on first connect
        self._idle: list[http.client.HTTPConnection] = []  # kept-alive connections nobody is sending on
        self._open = 0  # connections open or being used, idle or not
        self._lock = threading.Condition()

    def post(self, path: str, headers: dict[str, str], body: bytes) -> Answer | DeliveryResult:
        """The answer, or why there was none, classified."""
        conn = self._checkout()
        reusable = False
        try:
            answer, reusable = self._exchange(conn, path, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            return DeliveryResult("transient", detail=connection_detail(exc, self.peer))
        except ValueError:  # a header or host name http.client cannot encode
            return DeliveryResult("permanent", detail="request cannot be encoded for HTTP")
        finally:
            self._checkin(conn, reusable)
        return answer

    def close(self) -> None:
        """Close the idle connections (all of them once no send is running); the pool
        stays usable and connects again on the next post."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._lock.notify_all()
        for conn in idle:
            conn.close()

    def _exchange(self, conn: http.client.HTTPConnection, path: str, headers: dict[str, str],
                  body: bytes) -> tuple[Answer, bool]:
        """The answer, and whether the connection can be reused."""
        if conn.sock is None:
            conn.connect()  # within connect_timeout (TLS handshake included)
            conn.sock.settimeout(self.read_timeout)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        if response.length is not None and response.length <= MAX_ANSWER:
            data = response.read()  # IncompleteRead if the peer hangs up mid-answer
        else:
            data = response.read(MAX_ANSWER)
        reusable = response.isclosed() and not response.will_close
        return Answer(response.status, response.headers, data), reusable

    def _checkout(self) -> http.client.HTTPConnection:
        """An idle connection still open, else a new (unconnected) one while fewer than
        ``size`` are in use, else wait for one to be given back."""
        with self._lock:
            while True:
                while self._idle:
                    conn = self._idle.pop()
                    if _still_open(conn):
                        return conn
                    self._open -= 1
                    conn.close()
                if self._open < self.size:
                    self._open += 1
                    break
                self._lock.wait()
        if self.tls:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.connect_timeout, context=self._ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)

    def _checkin(self, conn: http.client.HTTPConnection, reusable: bool) -> None:
        with self._lock:
            if reusable:
                self._idle.append(conn)
            else:
                self._open -= 1
            self._lock.notify()
        if not reusable:
            conn.close()


def failed_answer(answer: Answer, *secrets: str) -> DeliveryResult:
    """An answer that is not 2xx, classified; ``secrets`` (the recipient, a token) are
    taken out of the detail."""
    status = answer.status
    detail = f"HTTP {status}"
    code = error_code(answer.json())
    if code:
        detail += f", error {code}"
    detail = redact(detail, *secrets)
    if status in (408, 429) or 500 <= status < 600:
        return DeliveryResult("transient", detail=detail, retry_after=retry_after(answer.headers.get("Retry-After")))
    if 300 <= status < 400:
        detail += " (redirects are not followed)"
    return DeliveryResult("permanent", detail=detail)


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


def token(value: Any) -> str | None:
    """An id from an answer, if it looks like one: printable, no spaces, at most 150 characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def error_code(data: dict[str, Any]) -> str | None:
    """The provider's error code (``code``, ``error_code`` or ``error``), only if it looks
    like a code: its free-text message may quote the recipient or the text."""
    for key in ("code", "error_code", "error"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and _ERROR_CODE.fullmatch(value):
            return value
    return None


def check_path(path: str, name: str) -> str:
    """A URL's path as sent in the request line; characters that need escaping are refused."""
    if not _PATH.fullmatch(path):
        raise ChannelConfigError(f"{name} URL: the path has characters that must be %-escaped")
    return path


def connection_detail(exc: BaseException, peer: str) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return f"{peer} closed the connection without answering"
    if isinstance(exc, http.client.IncompleteRead):
        return f"{peer} closed the connection mid-answer"
    if isinstance(exc, http.client.HTTPException):
        return f"malformed answer from {peer} ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno < 0:
        return f"cannot resolve the {peer}'s host name"  # socket.gaierror
    if isinstance(exc, OSError):
        return os_error_detail(exc, f"cannot reach {peer}")
    return type(exc).__name__


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection has nothing to read; EOF means the peer closed it."""
    sock = conn.sock
    if sock is None:
        return True  # never connected: connects on use
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
