"""Passwords hashed with argon2id (argon2-cffi), at the cost ``[console] hash_memory_kib``
and ``hash_time_cost`` set (default: RFC 9106's second recommended setting, 64 MiB and 3
passes); a hash made at another cost still verifies, and is made again at the set cost on
the next sign-in. The second factor: TOTP (RFC 6238) codes by pyotp."""
from __future__ import annotations

import functools

import argon2
import pyotp

Cost = tuple[int, int]  # (memory in KiB, passes)
DEFAULT_COST: Cost = (65536, 3)


class PasswordRejected(ValueError):
    pass


@functools.lru_cache(maxsize=4)
def _hasher(cost: Cost) -> argon2.PasswordHasher:
    memory_kib, passes = cost
    return argon2.PasswordHasher(memory_cost=memory_kib, time_cost=passes)


@functools.lru_cache(maxsize=4)
def _dummy(cost: Cost) -> str:
    """A hash to verify against when no such user exists, so a wrong name takes as long as a
    wrong password."""
    return _hasher(cost).hash("a password no one has")


def hash_password(password: str, *, min_length: int, user_name: str = "", cost: Cost = DEFAULT_COST) -> str:
    if len(password) < min_length:
        raise PasswordRejected(f"a password needs at least {min_length} characters")
    if user_name and user_name.lower() in password.lower():
        raise PasswordRejected("a password may not contain the user name")
    return _hasher(cost).hash(password)


def verify_password(stored: str | None, password: str, cost: Cost = DEFAULT_COST) -> bool:
    try:
        return _hasher(cost).verify(stored or _dummy(cost), password) and stored is not None
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def needs_rehash(stored: str, cost: Cost = DEFAULT_COST) -> bool:
    return _hasher(cost).check_needs_rehash(stored)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, user_name: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user_name, issuer_name=issuer)


def verify_totp(secret: str, code: str) -> bool:
    code = "".join(code.split())
    return code.isdigit() and pyotp.TOTP(secret).verify(code, valid_window=1)
