"""Who calls the API: a bearer token in ``Authorization``. A service account's key or a
staff member's personal token acts as its user, with the user's permissions; an
event-ingestion token (``ccm tokens create``) may only post events. ``require`` declares
on an operation the permission it needs and refuses others: 401 without a valid token,
403 naming the missing permission."""
from __future__ import annotations

import functools
from typing import Any, Callable

from flask import current_app, g, request

from ccm.feedback import authenticate
from ccm.staff import Caller, api_caller
from ccm.web.api.problems import errors, fail

KEY_SCHEME = "key"
EVENTS_SCHEME = "eventToken"
SECURITY_SCHEMES = {
    KEY_SCHEME: {"type": "http", "scheme": "bearer",
                 "description": "a service account's key (`ccm keys create ACCOUNT`) or a personal token of staff (`ccm login`); "
                                "it acts with the permissions of its account's roles"},
    EVENTS_SCHEME: {"type": "http", "scheme": "bearer",
                    "description": "an event-ingestion token (`ccm tokens create NAME`): POST /events only"},
}


def engine():  # type: ignore[no-untyped-def]
    return current_app.extensions["ccm"]


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def caller() -> Caller:
    """The caller of the current request (after ``require``)."""
    return g.api_caller


def caller_name() -> str:
    """How the caller is named in audits and events: the account and the key."""
    found = caller()
    return f"{found.staff.name} (api:{found.token})"


def _unauthorized() -> None:
    fail(401, "a valid API key is required (Authorization: Bearer <key>)")


def require(blueprint: Any, permission: str, *, events_token: bool = False) -> Callable:
    """The operation needs ``permission``; with ``events_token``, an event-ingestion token
    is accepted as well."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            token = bearer_token()
            found = api_caller(engine(), token)
            if found is None:
                name = authenticate(engine(), token, "events") if events_token else None
                if name is None:
                    _unauthorized()
                g.api_token, g.api_caller = name, None
                return view(*args, **kwargs)
            if not found.staff.can(permission):
                fail(403, f"this key's account ({found.staff.name}) lacks the permission {permission}", permission=permission)
            g.api_token, g.api_caller = found.token, found
            return view(*args, **kwargs)

        schemes = [{KEY_SCHEME: []}] + ([{EVENTS_SCHEME: []}] if events_token else [])
        documented = blueprint.doc(security=schemes, description=f"Needs the permission `{permission}`"
                                   + (" (or an event-ingestion token)." if events_token else "."))(inner)
        return errors(blueprint, 401, 403)(documented)

    return decorate
