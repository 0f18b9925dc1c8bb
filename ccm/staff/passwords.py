"""Passwords hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
setting), and the second factor: TOTP (RFC 6238) codes by pyotp."""
from __future__ import annotations

import argon2
import pyotp

_hasher = argon2.PasswordHasher()
# A hash to verify against when no such user exists, so a wrong name takes as long as a wrong password.
_DUMMY = _hasher.hash("a password no one has")


class PasswordRejected(ValueError):
    pass


def hash_password(password: str, *, min_length: int, user_name: str = "") -> str:
    if len(password) < min_length:
        raise PasswordRejected(f"a password needs at least {min_length} characters")
    if user_name and user_name.lower() in password.lower():
        raise PasswordRejected("a password may not contain the user name")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, user_name: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user_name, issuer_name=issuer)


def verify_totp(secret: str, code: str) -> bool:
    code = "".join(code.split())
    return code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1)
