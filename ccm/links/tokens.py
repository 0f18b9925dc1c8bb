"""Signed tokens for the public links a customer receives: the open pixel, tracked clicks,
one-click unsubscribe and the preference centre.

A token is ``itsdangerous`` timed and signed with the engine's secret and *one salt per
purpose*, so a click token cannot be replayed as an unsubscribe token, and a token that
was tampered with, forged or is older than ``[feedback] token_max_age_days`` is refused.
Tokens carry ids only (the message, the link's position), never an address.

The secret is the engine's (``ccm.keys.secret_key``): ``[web] secret_key``, or where it is
empty (the embedded default) a random key made once in ``<var_dir>/secret.key``. Several
machines (web servers, Celery workers) must share one: set ``CCM_WEB__SECRET_KEY`` on all of them.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.serializer import Serializer

from ccm.keys import secret_key

PURPOSES = ("open", "click", "unsubscribe", "preferences")
DAY = 86_400


class TokenError(ValueError):
    """A token that is forged, tampered with, expired or meant for another purpose."""


class _TokenSerializer(URLSafeTimedSerializer):
    """URL-safe, without trying zlib on payloads of a few bytes (most of the cost of a
    token, and never shorter); tokens it makes load with the plain serializer too."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class ShortCodes:
    """Short codes for links printed on paper (and QR codes): ``<message hex>-<link>-<10
    characters of an HMAC>``, about 20 characters instead of 60, that a customer can type.
    They do not expire (a letter is kept for years) and carry only ids; the HMAC makes
    guessing one hopeless (64^10), and the public endpoints are rate limited."""

    def __init__(self, secret: str) -> None:
        self.key = hashlib.sha256(f"ccm.short:{secret}".encode("utf-8")).digest()

    def _mac(self, message_id: int, position: int) -> str:
        digest = hmac.new(self.key, f"{message_id}:{position}".encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii")[:10]

    def make(self, message_id: int, position: int) -> str:
        return f"{message_id:x}-{position}-{self._mac(message_id, position)}"

    def read(self, code: str) -> tuple[int, int]:
        parts = code.split("-", 2)
        try:
            message_id, position, mac = int(parts[0], 16), int(parts[1]), parts[2]
        except (ValueError, IndexError):
            raise TokenError("this link is not valid") from None
        if not hmac.compare_digest(mac, self._mac(message_id, position)):
            raise TokenError("this link is not valid")
        return message_id, position


@functools.lru_cache(maxsize=8)
def _signer(secret: str, max_age_days: int) -> "Signer":
    return Signer(secret, max_age_days)


@dataclass(frozen=True)
class Signer:
    """Makes and checks the tokens of every purpose with one secret."""

    secret: str
    max_age_days: int
    _serializers: dict[str, _TokenSerializer] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: dict) -> "Signer":
        """One signer per secret and lifetime in the process (its serializers are reused)."""
        return _signer(secret_key(settings), int(settings["feedback"]["token_max_age_days"]))

    def _serializer(self, purpose: str) -> _TokenSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            if purpose not in PURPOSES:
                raise ValueError(f"no such token purpose: {purpose}")
            serializer = self._serializers[purpose] = _TokenSerializer(self.secret, salt=f"ccm.{purpose}")
        return serializer

    def dumps(self, purpose: str, payload: Any) -> str:
        return self._serializer(purpose).dumps(payload)

    def loads(self, purpose: str, token: str) -> Any:
        """The payload, or :class:`TokenError` saying why not (never which part was wrong)."""
        try:
            return self._serializer(purpose).loads(token, max_age=self.max_age_days * DAY)
        except SignatureExpired:
            raise TokenError("this link has expired") from None
        except BadSignature:
            raise TokenError("this link is not valid") from None
