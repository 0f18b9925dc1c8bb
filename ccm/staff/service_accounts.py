"""Service accounts: other systems (a CRM, a billing system, a website) that call the API.

A service account is a user of kind "service" holding roles like staff, so it carries the
same ``area:action`` permissions as the console; it has no password and never signs in.
It acts through API keys: ``api_tokens`` rows of scope "key" with its ``user_id``, shown
once when made (only their SHA-256 is kept), expiring, revocable. Every change is audited
with who made it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select

from ccm.models import utcnow
from ccm.models.feedback import ApiToken
from ccm.models.staff import User
from ccm.staff import audit
from ccm.staff.users import PERSONAL, Staff, UserError, _roles, _valid_name, as_staff
from ccm.wiring import Engine

KEY = "key"  # the scope of a service account's key
NO_PASSWORD = "!"  # not an argon2 hash: nothing verifies against it
MAX_DAYS = 3650


@dataclass(frozen=True)
class Caller:
    """Who a bearer token acts for: the user (staff or service account) and the token's
    name (whose rate budget and idempotency keys it uses)."""

    staff: Staff
    token: str
    scope: str


@dataclass(frozen=True)
class NewKey:
    name: str
    key: str  # shown once
    expires_at: dt.datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_service_account(engine: Engine, name: str, roles: Iterable[str], *, actor: str, display_name: str = "") -> Staff:
    _valid_name(name)
    with engine.db.session() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise UserError(f"a user named {name!r} exists")
        user = User(name=name, kind="service", display_name=display_name, password_hash=NO_PASSWORD, roles=_roles(session, roles))
        session.add(user)
        session.flush()
        audit.record(session, actor, "service_account.create", "user", name, roles=sorted(r.name for r in user.roles))
        return as_staff(user)


def _account(session, name: str) -> User:  # type: ignore[no-untyped-def]
    user = session.scalar(select(User).where(User.name == name))
    if user is None or user.kind != "service":
        raise UserError(f"no such service account: {name}")
    return user


def create_key(engine: Engine, account: str, *, days: int, actor: str) -> NewKey:
    """A key for the service account ``account``, valid for ``days`` days."""
    if not 1 <= days <= MAX_DAYS:
        raise UserError(f"days must be between 1 and {MAX_DAYS}")
    key = "ccmk_" + secrets.token_urlsafe(32)
    now = utcnow()
    with engine.db.session() as session:
        user = _account(session, account)
        name = f"{account}.{secrets.token_hex(3)}"
        expires = now + dt.timedelta(days=days)
        session.add(ApiToken(name=name, token_hash=_digest(key), scopes=KEY, created_at=now, user_id=user.id, expires_at=expires))
        audit.record(session, actor, "key.create", "key", name, account=account, days=days)
    return NewKey(name, key, expires)


def list_keys(engine: Engine) -> list[dict]:
    """Every key of every service account, without secrets."""
    with engine.db.reader() as session:
        rows = session.execute(select(ApiToken, User.name).join(User, ApiToken.user_id == User.id)
                               .where(ApiToken.scopes == KEY).order_by(User.name, ApiToken.created_at))
        return [{"name": token.name, "account": account, "created_at": token.created_at, "expires_at": token.expires_at,
                 "last_used_at": token.last_used_at, "revoked": token.revoked_at is not None} for token, account in rows]


def revoke_key(engine: Engine, name: str, *, actor: str) -> None:
    with engine.db.session() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.name == name, ApiToken.scopes == KEY))
        if token is None:
            raise UserError(f"no such key: {name}")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            audit.record(session, actor, "key.revoke", "key", name)


def api_caller(engine: Engine, token: str | None) -> Caller | None:
    """Who a service account's key or a staff member's personal token acts for, or None
    (unknown, revoked, expired, another kind of token, or its user disabled)."""
    if not token:
        return None
    now = utcnow()
    with engine.db.session() as session:
        found = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None),
                                                      ApiToken.user_id.is_not(None), ApiToken.scopes.in_((KEY, PERSONAL))))
        if found is None or (found.expires_at is not None and found.expires_at <= now):
            return None
        user = session.get(User, found.user_id)
        if user is None or not user.active:
            return None
        if found.last_used_at is None or now - found.last_used_at > dt.timedelta(minutes=1):  # a write a minute, not one per call
            found.last_used_at = now
        return Caller(as_staff(user), found.name, found.scopes)
