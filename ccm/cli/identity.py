"""Who runs a command: the member of staff signed in with ``ccm login`` (a personal token
kept in a file only its owner can read) or named by a personal token in ``CCM_TOKEN``;
never a name typed on the command line. Commands that approve, send, reprint or erase also
ask for the password again (``CCM_PASSWORD`` for scripts), like the console's fresh sign-in.
"""
from __future__ import annotations

import getpass
import hashlib
import os
from pathlib import Path

import click

from ccm.cli.common import engine
from ccm.staff import Staff, confirm_password, list_roles, grants, staff_for_token


def token_file() -> Path:
    """Where ``ccm login`` keeps its token for this database (``CCM_TOKEN_FILE`` overrides)."""
    explicit = os.environ.get("CCM_TOKEN_FILE")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "ccm"
    database = hashlib.sha256(engine().settings["ccm"]["database_url"].encode()).hexdigest()[:12]
    return base / f"token-{database}"


def save_token(token: str) -> Path:
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(token + "\n")
    return path


def current_token() -> str | None:
    if os.environ.get("CCM_TOKEN"):
        return os.environ["CCM_TOKEN"].strip()
    path = token_file()
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def shell_actor() -> str:
    """How bootstrap commands run at a shell before anyone can sign in are audited."""
    try:
        return f"shell:{getpass.getuser()}"
    except (OSError, KeyError):
        return "shell:?"


def acting(permission: str, *, fresh: bool = False) -> Staff:
    """The signed-in user, if they hold ``permission``; with ``fresh``, after their password
    (and code) again. Anything else ends the command with one line saying what to do."""
    staff = staff_for_token(engine(), current_token())
    if staff is None:
        raise click.ClickException("sign in first: ccm login (or set CCM_TOKEN to a personal token)")
    if not staff.can(permission):
        roles = [role.name for role in list_roles(engine()) if grants(role.permissions, permission)]
        raise click.ClickException(f"{staff.name} may not do this: it needs the permission {permission}"
                                   + (f" (roles that have it: {', '.join(roles)})" if roles else ""))
    if fresh:
        password = os.environ.get("CCM_PASSWORD") or click.prompt(f"Password of {staff.name}, to confirm", hide_input=True,
                                                                  err=True)
        code = None
        if staff.totp:
            code = os.environ.get("CCM_TOTP_CODE") or click.prompt("Code from your authenticator app", err=True)
        if not confirm_password(engine(), staff, password, code):
            raise click.ClickException("that password is not right; nothing was done")
    return staff


def operator(permission: str) -> str:
    """Who a run-control command (``ccm run``, ``ccm runs resume``, ``pause``, ``cancel``)
    acts as, for its audit entry: the signed-in user, who must hold ``permission``; with no
    one signed in, the shell's user (``shell:NAME``, the operator at the machine that holds
    the database's credentials) unless ``[console] cli_sign_in`` requires signing in."""
    if current_token() is not None or engine().settings["console"]["cli_sign_in"]:
        return acting(permission).name
    return shell_actor()
