"""One attempt at a webhook: POST the body, classify the answer.

- 2xx: delivered;
- 408, 429, 5xx, a timeout, a connection error, a host that does not resolve: retry
  (with the answer's ``Retry-After``, in seconds or as a date);
- a 307 or 308 to the same scheme, host and port is followed (up to 3); any other
  redirect is not, and like every other answer (4xx) is final: dead.

Only ``http`` and ``https``. The host is resolved once per attempt and the connection is
made to the address checked (so a name cannot point somewhere else between check and
connect); loopback, private, link-local and other non-public addresses are refused
unless ``allow_private``. Errors name what happened, never the URL or the body.
"""
from __future__ import annotations

import email.utils
import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 3
READ_LIMIT = 65536


@dataclass(frozen=True)
class Answer:
    outcome: str  # delivered, retry or dead
    status: int | None = None  # the HTTP status, None without an answer
    error: str | None = None
    retry_after: float | None = None  # seconds the receiver asked to wait


class Refused(ValueError):
    """A target the engine does not send to."""


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL that is not ``http(s)://host...``, or names a loopback or private
    address (as a literal, or ``localhost``) unless ``allow_private``. Names are resolved
    at each attempt, not here."""
    if not url.isascii() or any(char <= " " or char == "\x7f" for char in url):
        raise Refused("a URL is printable ASCII without spaces (percent-encode the rest)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("only http:// and https:// URLs with a host")
    if port == 0:
        raise Refused("port 0 is not a port")
    if allow_private:
        return
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        raise Refused("loopback targets are refused ([webhooks] allow_private)")
    try:
        literal = not public_address(host)
    except ValueError:
        return
    if literal:
        raise Refused("loopback and private addresses are refused ([webhooks] allow_private)")


def _resolve(host: str, port: int, allow_private: bool) -> str:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [info[4][0] for info in found]
    if not addresses:
        raise OSError("no address")
    if not allow_private and not all(public_address(address) for address in addresses):
        raise Refused("the host resolves to a loopback or private address ([webhooks] allow_private)")
    return addresses[0]


class _Pinned(http.client.HTTPConnection):
    """A connection to ``address``, with ``host`` in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTls(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext | None) -> None:
        super().__init__(host, port, timeout=timeout, context=context or ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (a number or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _classify(status: int, header: str | None) -> Answer:
    if 200 <= status < 300:
        return Answer("delivered", status)
    if status in (408, 429) or status >= 500:
        return Answer("retry", status, f"answered {status}", retry_after(header))
    if 300 <= status < 400:
        return Answer("dead", status, f"answered {status}: only a 307 or 308 to the same host is followed")
    return Answer("dead", status, f"answered {status}")


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool,
         tls: ssl.SSLContext | None = None) -> Answer:
    """One attempt: POST ``body`` to ``url``, following same-origin 307/308 redirects."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            check_url(url, allow_private=allow_private)
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = _resolve(parts.hostname or "", port, allow_private)
        except Refused as exc:
            return Answer("dead", error=str(exc))
        except (OSError, UnicodeError):
            return Answer("retry", error="the host does not resolve")
        connection: http.client.HTTPConnection = (
            _PinnedTls(parts.hostname or "", port, address, timeout, tls) if parts.scheme == "https"
            else _Pinned(parts.hostname or "", port, address, timeout))
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            response.read(READ_LIMIT)
            status, location, wait = response.status, response.getheader("Location"), response.getheader("Retry-After")
        except (TimeoutError, socket.timeout):
            return Answer("retry", error=f"no answer within {timeout:g} s")
        except ssl.SSLError as exc:
            return Answer("retry", error=f"TLS failed ({exc.reason or type(exc).__name__})")
        except (OSError, http.client.HTTPException) as exc:
            return Answer("retry", error=f"connection failed ({type(exc).__name__})")
        except ValueError as exc:  # a URL http.client will not send
            return Answer("dead", error=f"cannot send to this URL ({type(exc).__name__})")
        finally:
            connection.close()
        if status in (307, 308) and location:
            following = urljoin(url, location)
            before, after = urlsplit(url), urlsplit(following)
            if (before.scheme, before.hostname, before.port) != (after.scheme, after.hostname, after.port):
                return Answer("dead", status, f"answered {status} to another host: redirects to other hosts are not followed")
            url = following
            continue
        return _classify(status, wait)
    return Answer("dead", error=f"more than {MAX_REDIRECTS} redirects")
