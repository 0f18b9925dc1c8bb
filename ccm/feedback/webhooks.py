"""Signatures of inbound callbacks: ``X-CCM-Timestamp`` (Unix seconds) and
``X-CCM-Signature: sha256=<hex>``, the HMAC-SHA256 with ``[feedback] webhook_secret`` of
``<timestamp>.<channel>.<raw body>`` (``channel``: the endpoint's, ``sms`` or ``email``, so a
callback signed for one endpoint is refused by another). A signature older or newer than
five minutes is refused, so a captured callback cannot be replayed later; events are
idempotent on their ids anyway.
"""
from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300


class SignatureError(PermissionError):
    """The callback is not signed with our secret (or too old); nothing is recorded."""


def sign(secret: str, timestamp: int, body: bytes, channel: str) -> str:
    signed = f"{timestamp}.{channel}.".encode("ascii") + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def check_headers(secret: str, timestamp: str | None, signature: str | None, now: float | None = None) -> int:
    """What can be refused before the body is read: callbacks off, headers missing, a
    stale timestamp. Returns the timestamp."""
    if not secret:
        raise SignatureError("inbound callbacks are off: set [feedback] webhook_secret")
    if not timestamp or not signature:
        raise SignatureError("missing X-CCM-Timestamp or X-CCM-Signature")
    try:
        stamp = int(timestamp)
    except ValueError:
        raise SignatureError("X-CCM-Timestamp must be Unix seconds") from None
    if abs((now if now is not None else time.time()) - stamp) > TOLERANCE_SECONDS:
        raise SignatureError("the signature is too old or from the future")
    return stamp


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, channel: str, now: float | None = None) -> None:
    stamp = check_headers(secret, timestamp, signature, now)
    if not hmac.compare_digest(sign(secret, stamp, body, channel), (signature or "").strip()):
        raise SignatureError("bad signature")
