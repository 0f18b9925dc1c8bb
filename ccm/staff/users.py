"""Staff users: create, list, disable, give roles; sign in with lockout and an optional
second factor; personal API tokens that act as their user (``ccm login``).

Every change is audited (``ccm.staff.audit``) with who made it. Names are what staff
sign in with; no e-mail address or phone number of staff is kept.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.models import utcnow
from ccm.models.feedback import ApiToken
from ccm.models.staff import Role, User
from ccm.staff import audit
from ccm.staff.passwords import PasswordRejected, hash_password, needs_rehash, new_totp_secret, verify_password, verify_totp
from ccm.staff.permissions import BUILT_IN_ROLES, check_permission, grants
from ccm.wiring import Engine

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
RESERVED = ("library", "system", "shell", "api")  # names the engine itself acts under
PERSONAL = "personal"  # the scope of a personal token: it acts as its user, never as an event feed


class UserError(ValueError):
    """A request about users that cannot be done (the message says why)."""


@dataclass(frozen=True)
class Staff:
    """A signed-in member of staff, as the console and the CLI see them."""

    id: int
    name: str
    display_name: str
    roles: tuple[str, ...]
    permissions: frozenset[str] = field(default_factory=frozenset)
    locale: str | None = None
    timezone: str | None = None
    totp: bool = False
    epoch: str = ""  # changes with the password: sessions made before a change end
    kind: str = "person"  # or "service": a service account, acting through API keys

    def can(self, permission: str) -> bool:
        return grants(self.permissions, permission)


def as_staff(user: User) -> Staff:
    permissions = frozenset(p for role in user.roles for p in role.permissions)
    return Staff(id=user.id, name=user.name, display_name=user.display_name or user.name,
                 roles=tuple(sorted(role.name for role in user.roles)), permissions=permissions, locale=user.locale,
                 timezone=user.timezone, totp=user.totp_secret is not None,
                 epoch=user.password_changed_at.isoformat() if user.password_changed_at else "", kind=user.kind or "person")


# --------------------------------------------------------------------------- roles


def seed_roles(session: Session) -> list[str]:
    """Create the built-in roles that are missing; returns their names. Existing roles are
    left as an admin changed them."""
    have = set(session.scalars(select(Role.name)))
    made = []
    for name, (description, permissions) in BUILT_IN_ROLES.items():
        if name not in have:
            session.add(Role(name=name, description=description, permissions=list(permissions), built_in=True))
            made.append(name)
    return made


def list_roles(engine: Engine) -> list[Role]:
    with engine.db.session() as session:
        seed_roles(session)
        roles = list(session.scalars(select(Role).order_by(Role.name)))
        session.expunge_all()
        return roles


def set_role_permissions(engine: Engine, role: str, permissions: Iterable[str], *, actor: str) -> Role:
    wanted = sorted({check_permission(p) for p in permissions})
    with engine.db.session() as session:
        seed_roles(session)
        found = session.scalar(select(Role).where(Role.name == role))
        if found is None:
            found = Role(name=_valid_name(role), description="", permissions=[], built_in=False)
            session.add(found)
        before = list(found.permissions)
        found.permissions = wanted
        audit.record(session, actor, "role.permissions", "role", role, before=before, after=wanted)
        session.flush()
        session.expunge(found)
        return found


# --------------------------------------------------------------------------- users


def _cost(settings: dict) -> tuple[int, int]:
    return int(settings["hash_memory_kib"]), int(settings["hash_time_cost"])


def _valid_name(name: str) -> str:
    if name in RESERVED:
        raise UserError(f"{name!r} is a name the engine acts under; choose another")
    if not NAME.match(name):
        raise UserError(f"not a valid name: {name!r} (2 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit)")
    return name


def _roles(session: Session, names: Iterable[str]) -> list[Role]:
    seed_roles(session)
    names = list(dict.fromkeys(names))
    found = {role.name: role for role in session.scalars(select(Role).where(Role.name.in_(names)))}
    missing = [name for name in names if name not in found]
    if missing:
        known = ", ".join(session.scalars(select(Role.name).order_by(Role.name)))
        raise UserError(f"no such role: {missing[0]} (one of: {known})")
    return [found[name] for name in names]


def create_user(engine: Engine, name: str, password: str, roles: Iterable[str], *, actor: str,
                display_name: str = "", locale: str | None = None) -> Staff:
    settings = engine.settings["console"]
    _valid_name(name)
    try:
        hashed = hash_password(password, min_length=int(settings["min_password_length"]), user_name=name, cost=_cost(settings))
    except PasswordRejected as exc:
        raise UserError(str(exc)) from None
    with engine.db.session() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise UserError(f"a user named {name!r} exists")
        user = User(name=name, display_name=display_name, password_hash=hashed, locale=locale, roles=_roles(session, roles))
        session.add(user)
        session.flush()
        audit.record(session, actor, "user.create", "user", name, roles=sorted(r.name for r in user.roles))
        return as_staff(user)


def list_users(engine: Engine) -> list[dict]:
    now = utcnow()
    with engine.db.reader() as session:
        return [{"name": u.name, "kind": u.kind, "display_name": u.display_name, "roles": sorted(r.name for r in u.roles),
                 "active": u.active, "locked": bool(u.locked_until and u.locked_until > now), "totp": u.totp_secret is not None,
                 "last_signin_at": u.last_signin_at}
                for u in session.scalars(select(User).order_by(User.name))]


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UserError(f"no such user: {name}")
    return user


def get_staff(engine: Engine, user_id: int) -> Staff | None:
    """The active user with this id, or None (disabled, removed)."""
    with engine.db.reader() as session:
        user = session.get(User, user_id)
        return as_staff(user) if user is not None and user.active else None


def set_active(engine: Engine, name: str, active: bool, *, actor: str) -> None:
    """Disable a user (their sessions and tokens stop working at once) or enable one again,
    which also lifts a lockout."""
    with engine.db.session() as session:
        user = _user(session, name)
        user.active = active
        if active:
            user.failed_signins, user.locked_until = 0, None
        audit.record(session, actor, "user.enable" if active else "user.disable", "user", name)


def set_roles(engine: Engine, name: str, roles: Iterable[str], *, actor: str) -> Staff:
    with engine.db.session() as session:
        user = _user(session, name)
        before = sorted(r.name for r in user.roles)
        user.roles = _roles(session, roles)
        after = sorted(r.name for r in user.roles)
        audit.record(session, actor, "user.roles", "user", name, before=before, after=after)
        return as_staff(user)


def set_password(engine: Engine, name: str, password: str, *, actor: str) -> None:
    settings = engine.settings["console"]
    try:
        hashed = hash_password(password, min_length=int(settings["min_password_length"]), user_name=name, cost=_cost(settings))
    except PasswordRejected as exc:
        raise UserError(str(exc)) from None
    with engine.db.session() as session:
        user = _user(session, name)
        user.password_hash, user.password_changed_at = hashed, utcnow()
        user.failed_signins, user.locked_until = 0, None
        audit.record(session, actor, "user.password", "user", name)


def set_preferences(engine: Engine, user_id: int, *, locale: str | None, timezone: str | None) -> None:
    with engine.db.session() as session:
        user = session.get(User, user_id)
        if user is not None:
            user.locale, user.timezone = locale, timezone


# --------------------------------------------------------------------------- signing in


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: ``staff`` when it succeeded; ``needs_code`` when
    the password was right and a second factor is enrolled but no code was given; else
    ``refused`` with a reason staff may read (never which of name or password was wrong)."""

    staff: Staff | None = None
    needs_code: bool = False
    refused: str | None = None


WRONG = "wrong name or password"


def sign_in(engine: Engine, name: str, password: str, code: str | None = None, *, source: str = "console") -> SignIn:
    """Check a name, a password and (if enrolled) a TOTP code. Failures count toward the
    lockout; every attempt is audited."""
    settings = engine.settings["console"]
    now = utcnow()
    with engine.db.session() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None or user.kind == "service":  # a service account never signs in
            verify_password(None, password, _cost(settings))  # the same time as for a real user
            audit.record(session, "-", "signin.failed", "user", name[:64], source=source, reason="unknown")
            return SignIn(refused=WRONG)
        if not user.active:
            verify_password(user.password_hash, password, _cost(settings))
            audit.record(session, name, "signin.failed", "user", name, source=source, reason="disabled")
            return SignIn(refused=WRONG)
        if user.locked_until and user.locked_until > now:
            audit.record(session, name, "signin.failed", "user", name, source=source, reason="locked")
            minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
            return SignIn(refused=f"too many failed sign-ins: locked for {minutes} more minutes")
        if not verify_password(user.password_hash, password, _cost(settings)):
            return _failed(session, user, settings, source, "password")
        if user.totp_secret is not None:
            if not code:
                return SignIn(needs_code=True)
            if not verify_totp(user.totp_secret, code):
                return _failed(session, user, settings, source, "code")
        if needs_rehash(user.password_hash, _cost(settings)):  # made at another cost: made again at the set one
            user.password_hash = hash_password(password, min_length=0, cost=_cost(settings))
        user.failed_signins, user.locked_until, user.last_signin_at = 0, None, now
        audit.record(session, name, "signin", "user", name, source=source)
        return SignIn(staff=as_staff(user))


def sign_in_code(engine: Engine, name: str, code: str) -> SignIn:
    """The second step of a sign-in whose password was right (``SignIn.needs_code``): the
    TOTP code alone, counted toward the lockout like a password."""
    settings = engine.settings["console"]
    now = utcnow()
    with engine.db.session() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None or not user.active or user.totp_secret is None:
            return SignIn(refused=WRONG)
        if user.locked_until and user.locked_until > now:
            audit.record(session, name, "signin.failed", "user", name, source="console", reason="locked")
            return SignIn(refused="too many failed sign-ins: try again later")
        if not verify_totp(user.totp_secret, code):
            return _failed(session, user, settings, "console", "code")
        user.failed_signins, user.locked_until, user.last_signin_at = 0, None, now
        audit.record(session, name, "signin", "user", name, source="console", second_factor=True)
        return SignIn(staff=as_staff(user))


def _failed(session: Session, user: User, settings: dict, source: str, reason: str) -> SignIn:
    user.failed_signins += 1
    locked = user.failed_signins >= int(settings["lockout_after"])
    if locked:
        user.locked_until = utcnow() + dt.timedelta(minutes=int(settings["lockout_minutes"]))
        user.failed_signins = 0
    audit.record(session, user.name, "signin.failed", "user", user.name, source=source, reason=reason, locked=locked or None)
    if locked:
        return SignIn(refused=f"too many failed sign-ins: locked for {settings['lockout_minutes']} minutes")
    return SignIn(refused=WRONG if reason == "password" else "wrong code")


def confirm_password(engine: Engine, staff: Staff, password: str, code: str | None = None) -> bool:
    """A fresh re-authentication of a signed-in user (before approving, sending, reprinting
    or erasing): the same checks as signing in, counted toward the lockout."""
    return sign_in(engine, staff.name, password, code, source="confirm").staff is not None


# --------------------------------------------------------------------------- second factor


def start_totp(engine: Engine, staff: Staff) -> str:
    """A new secret to enrol; it takes effect once ``confirm_totp`` sees a code made from it."""
    return new_totp_secret()


def confirm_totp(engine: Engine, staff: Staff, secret: str, code: str) -> bool:
    if not verify_totp(secret, code):
        return False
    with engine.db.session() as session:
        user = _user(session, staff.name)
        user.totp_secret = secret
        audit.record(session, staff.name, "user.totp", "user", staff.name, enrolled=True)
    return True


def remove_totp(engine: Engine, name: str, *, actor: str) -> None:
    with engine.db.session() as session:
        user = _user(session, name)
        user.totp_secret = None
        audit.record(session, actor, "user.totp", "user", name, enrolled=False)


# --------------------------------------------------------------------------- personal tokens


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(engine: Engine, staff: Staff, *, label: str = "cli") -> str:
    """A personal token for ``staff`` (shown once; only its hash is kept), valid for
    ``[console] token_days``."""
    token = "ccmu_" + secrets.token_urlsafe(32)
    now = utcnow()
    with engine.db.session() as session:
        session.add(ApiToken(name=f"{staff.name}:{label}:{secrets.token_hex(4)}", token_hash=_digest(token), scopes=PERSONAL,
                             created_at=now, user_id=staff.id,
                             expires_at=now + dt.timedelta(days=int(engine.settings["console"]["token_days"]))))
        audit.record(session, staff.name, "token.issue", "user", staff.name, label=label)
    return token


def staff_for_token(engine: Engine, token: str | None) -> Staff | None:
    """The active user a personal token acts for, or None (unknown, revoked, expired, or
    its user disabled)."""
    if not token:
        return None
    now = utcnow()
    with engine.db.session() as session:
        found = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None),
                                                      ApiToken.user_id.is_not(None)))
        if found is None or (found.expires_at and found.expires_at <= now):
            return None
        user = session.get(User, found.user_id)
        if user is None or not user.active:
            return None
        found.last_used_at = now
        return as_staff(user)


def revoke_token(engine: Engine, token: str) -> bool:
    with engine.db.session() as session:
        found = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None)))
        if found is None:
            return False
        found.revoked_at = utcnow()
        return True
