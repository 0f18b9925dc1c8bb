"""Signing secrets of subscriptions: made here (``whsec_`` and 24 random bytes in base64, as
Standard Webhooks has them), shown once, and stored sealed with Fernet (``cryptography``:
AES-128-CBC and HMAC-SHA256, a random IV, a timestamp) under a key derived from the engine's
secret (``ccm.keys``, purpose "webhooks"). A sealed secret opens only with the same engine
secret; it is never logged.

Secrets sealed before Fernet (``v1:``, an HMAC-SHA256 stream with an HMAC tag under the same
derived key) still open, so subscriptions made then keep working; each is sealed again with
Fernet when next opened for a delivery (``reseal``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

from ccm.keys import derived_key

PREFIX = "whsec_"
SEALED = "v2:"  # Fernet
LEGACY = "v1:"  # HMAC stream, before Fernet: opened, never made
NONCE_BYTES = 16
TAG_BYTES = 32


class SecretUnreadable(ValueError):
    """A sealed secret that does not open: sealed with another engine secret, or altered."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _fernet(settings: dict) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derived_key(settings, "webhooks")))


def seal(settings: dict, secret: str) -> str:
    """``secret`` encrypted for storage."""
    return SEALED + _fernet(settings).encrypt(secret.encode("utf-8")).decode("ascii")


def unseal(settings: dict, sealed: str) -> str:
    """The secret ``seal`` encrypted."""
    if sealed.startswith(LEGACY):
        return _unseal_legacy(settings, sealed)
    if not sealed.startswith(SEALED):
        raise SecretUnreadable("the signing secret is not sealed by this engine")
    try:
        return _fernet(settings).decrypt(sealed.removeprefix(SEALED).encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable("the signing secret does not open with this engine's secret ([web] secret_key changed?)") from None


def reseal(settings: dict, sealed: str) -> str | None:
    """A secret sealed the old way (``v1:``), sealed again with Fernet; None when it is not old."""
    return seal(settings, unseal(settings, sealed)) if sealed.startswith(LEGACY) else None


def _unseal_legacy(settings: dict, sealed: str) -> str:
    key = derived_key(settings, "webhooks")
    encrypt, authenticate = (hmac.new(key, b"encrypt", hashlib.sha256).digest(), hmac.new(key, b"authenticate", hashlib.sha256).digest())
    try:
        raw = base64.b64decode(sealed.removeprefix(LEGACY), validate=True)
    except ValueError:
        raise SecretUnreadable("the signing secret is not sealed by this engine") from None
    nonce, cipher, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
    if not hmac.compare_digest(tag, hmac.new(authenticate, nonce + cipher, hashlib.sha256).digest()):
        raise SecretUnreadable("the signing secret does not open with this engine's secret ([web] secret_key changed?)")
    blocks = (hmac.new(encrypt, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest() for counter in range(len(cipher) // 32 + 1))
    return bytes(a ^ b for a, b in zip(cipher, b"".join(blocks))).decode("utf-8")
