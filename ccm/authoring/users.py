"""Who acts: the CLI names the user (``--user``, else ``[ccm] user`` i.e. ``CCM_USER``, else the OS login).

Roles (marketer, approver, ...) and authentication come with the web UI; until then the
engine enforces what does not depend on roles: maker-checker, immutability, states.
"""
from __future__ import annotations

import getpass
import re

from ccm.authoring.store import LIBRARY_AUTHOR

USER_NAME = re.compile(r"^[\w.@+-]{1,100}$")


class UserError(ValueError):
    pass


def resolve_user(explicit: str | None = None, configured: str | None = None) -> str:
    name = explicit or configured or _login()
    if not name or not USER_NAME.match(name):
        raise UserError(f"bad user name {name!r}: letters, digits and . @ + - _ only (--user or CCM_USER)")
    if name == LIBRARY_AUTHOR:
        raise UserError(f"{LIBRARY_AUTHOR!r} is the system user of the file library; act under your own name")
    return name


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""
