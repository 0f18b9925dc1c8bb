"""Signing secrets of subscriptions: made here (``whsec_`` and 24 random bytes in base64, as
Standard Webhooks has them), shown once, and stored sealed: encrypted with a stream of
HMAC-SHA256 blocks under a key derived from the engine's secret (``ccm.keys``, purpose
"webhooks"), with a random nonce and an HMAC tag over nonce and ciphertext. A sealed
secret opens only with the same engine secret; it is never logged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from ccm.keys import derived_key

PREFIX = "whsec_"
SEALED = "v1:"
NONCE_BYTES = 16
TAG_BYTES = 32


class SecretUnreadable(ValueError):
    """A sealed secret that does not open: sealed with another engine secret, or altered."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _keys(settings: dict) -> tuple[bytes, bytes]:
    key = derived_key(settings, "webhooks")
    return (hmac.new(key, b"encrypt", hashlib.sha256).digest(), hmac.new(key, b"authenticate", hashlib.sha256).digest())


def _stream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest() for counter in range(length // 32 + 1))
    return b"".join(blocks)[:length]


def seal(settings: dict, secret: str) -> str:
    """``secret`` encrypted for storage."""
    encrypt, authenticate = _keys(settings)
    nonce = secrets.token_bytes(NONCE_BYTES)
    plain = secret.encode("utf-8")
    cipher = bytes(a ^ b for a, b in zip(plain, _stream(encrypt, nonce, len(plain))))
    tag = hmac.new(authenticate, nonce + cipher, hashlib.sha256).digest()
    return SEALED + base64.b64encode(nonce + cipher + tag).decode("ascii")


def unseal(settings: dict, sealed: str) -> str:
    """The secret ``seal`` encrypted."""
    encrypt, authenticate = _keys(settings)
    try:
        raw = base64.b64decode(sealed.removeprefix(SEALED), validate=True)
    except ValueError:
        raise SecretUnreadable("the signing secret is not sealed by this engine") from None
    nonce, cipher, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
    if not sealed.startswith(SEALED) or not hmac.compare_digest(tag, hmac.new(authenticate, nonce + cipher, hashlib.sha256).digest()):
        raise SecretUnreadable("the signing secret does not open with this engine's secret ([web] secret_key changed?)")
    return bytes(a ^ b for a, b in zip(cipher, _stream(encrypt, nonce, len(cipher)))).decode("utf-8")
