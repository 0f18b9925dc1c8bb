"""``ccm users``, ``ccm login`` and ``ccm logout``: staff, their roles, and signing the CLI in.

The first user can be made at a shell (audited as ``shell:<login>``); after that, making
and changing users needs a signed-in user with ``users:manage``.
"""
from __future__ import annotations

import json
import os

import click
from flask import Flask
from sqlalchemy import func, select

from ccm.cli.common import clean_errors, engine, require_schema
from ccm.cli.identity import acting, current_token, save_token, shell_actor, token_file
from ccm.models.staff import User
from ccm.staff import (PERMISSIONS, UnknownPermission, UserError, issue_token, list_roles, list_users, remove_totp,
                       revoke_token, set_active, set_password, set_role_permissions, set_roles, sign_in, staff_for_token)

ERRORS = (UserError, UnknownPermission)


def _manager() -> str:
    """Who manages users in this command: anyone at the shell while there are none yet."""
    with engine().db.reader() as session:
        if not session.scalar(select(func.count()).select_from(User)):
            return shell_actor()
    return acting("users:manage").name


def _new_password(name: str) -> str:
    if os.environ.get("CCM_PASSWORD"):
        return os.environ["CCM_PASSWORD"]
    return click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True)


@click.group("users", help="Staff who sign in to the console and the CLI, and their roles.")
def users_group() -> None:
    pass


@users_group.command("create", help="Make a user with one or more roles; the password comes from a prompt or CCM_PASSWORD.")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeat for several): admin, marketer, approver, "
              "billing, scheduler, service, viewer, or one an admin made.")
@click.option("--display-name", default="", help="The name shown in the console (default: NAME).")
@click.option("--locale", type=click.Choice(["en", "zh_Hans"]), help="The console's language for this user (default: the browser's).")
@clean_errors(*ERRORS)
def create_command(name: str, roles: tuple[str, ...], display_name: str, locale: str | None) -> None:
    from ccm.staff import create_user

    require_schema()
    actor = _manager()
    made = create_user(engine(), name, _new_password(name), roles, actor=actor, display_name=display_name, locale=locale)
    click.echo(f"user {made.name} created with roles {', '.join(made.roles)}")


@users_group.command("list", help="Every user, their roles, and whether they can sign in.")
@click.option("--json", "as_json", is_flag=True)
@clean_errors(*ERRORS)
def list_command(as_json: bool) -> None:
    require_schema()
    rows = list_users(engine())
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        flags = [flag for flag, on in (("disabled", not row["active"]), ("locked", row["locked"]), ("2fa", row["totp"])) if on]
        click.echo(f"{row['name']:<20} {', '.join(row['roles']):<30} {' '.join(flags)}")
    if not rows:
        click.echo("no users yet: ccm users create NAME --role admin")


@users_group.command("disable", help="Stop a user signing in; their sessions and tokens stop working at once.")
@click.argument("name")
@clean_errors(*ERRORS)
def disable_command(name: str) -> None:
    require_schema()
    set_active(engine(), name, False, actor=acting("users:manage").name)
    click.echo(f"user {name} disabled")


@users_group.command("enable", help="Let a disabled or locked-out user sign in again.")
@click.argument("name")
@clean_errors(*ERRORS)
def enable_command(name: str) -> None:
    require_schema()
    set_active(engine(), name, True, actor=acting("users:manage").name)
    click.echo(f"user {name} enabled")


@users_group.command("password", help="Set a user's password (from a prompt or CCM_PASSWORD); lifts a lockout.")
@click.argument("name")
@clean_errors(*ERRORS)
def password_command(name: str) -> None:
    require_schema()
    actor = _manager()
    set_password(engine(), name, _new_password(name), actor=actor)
    click.echo(f"password of {name} set")


@users_group.command("reset-2fa", help="Remove a user's second factor (they enrol again in the console).")
@click.argument("name")
@clean_errors(*ERRORS)
def reset_totp_command(name: str) -> None:
    require_schema()
    remove_totp(engine(), name, actor=acting("users:manage").name)
    click.echo(f"second factor of {name} removed")


@users_group.command("roles", help="Without arguments: the roles and their permissions. With NAME and --role: set that "
                                   "user's roles. With --role-permissions ROLE PERMISSION...: set a role's permissions.")
@click.argument("name", required=False)
@click.option("--role", "roles", multiple=True, help="A role to give NAME (repeat for several; replaces their roles).")
@click.option("--json", "as_json", is_flag=True)
@clean_errors(*ERRORS)
def roles_command(name: str | None, roles: tuple[str, ...], as_json: bool) -> None:
    require_schema()
    if name and roles:
        changed = set_roles(engine(), name, roles, actor=acting("users:manage").name)
        click.echo(f"{name} now has roles {', '.join(changed.roles)}")
        return
    if name:
        row = next((u for u in list_users(engine()) if u["name"] == name), None)
        if row is None:
            raise click.ClickException(f"no such user: {name}")
        click.echo(", ".join(row["roles"]))
        return
    listed = [{"name": r.name, "description": r.description, "permissions": r.permissions, "built_in": r.built_in}
              for r in list_roles(engine())]
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    for role in listed:
        click.echo(f"{role['name']}: {role['description']}")
        click.echo(f"  {' '.join(role['permissions'])}")


@users_group.command("role-permissions", help="Set the permissions of a role (made if new): area:action strings, "
                                              "area:* or *. `ccm users permissions` lists them.")
@click.argument("role")
@click.argument("permissions", nargs=-1, required=True)
@clean_errors(*ERRORS)
def role_permissions_command(role: str, permissions: tuple[str, ...]) -> None:
    require_schema()
    changed = set_role_permissions(engine(), role, permissions, actor=acting("users:manage").name)
    click.echo(f"role {changed.name}: {' '.join(changed.permissions)}")


@users_group.command("permissions", help="Every permission the engine checks, with what it allows.")
def permissions_command() -> None:
    for name, meaning in PERMISSIONS.items():
        click.echo(f"{name:<20} {meaning}")


@click.command("login", help="Sign the CLI in as a user: a personal token kept in a file only you can read (CCM_PASSWORD "
                             "and CCM_TOTP_CODE for scripts).")
@click.argument("name")
@clean_errors(*ERRORS)
def login_command(name: str) -> None:
    require_schema()
    password = os.environ.get("CCM_PASSWORD") or click.prompt("Password", hide_input=True, err=True)
    outcome = sign_in(engine(), name, password, source="cli")
    if outcome.needs_code:
        code = os.environ.get("CCM_TOTP_CODE") or click.prompt("Code from your authenticator app", err=True)
        outcome = sign_in(engine(), name, password, code, source="cli")
    if outcome.staff is None:
        raise click.ClickException(outcome.refused or "not signed in")
    path = save_token(issue_token(engine(), outcome.staff))
    click.echo(f"signed in as {outcome.staff.name} ({', '.join(outcome.staff.roles)}); token in {path}")


@click.command("logout", help="Revoke the CLI's personal token and forget it.")
@clean_errors(*ERRORS)
def logout_command() -> None:
    require_schema()
    token = current_token()
    revoked = bool(token) and revoke_token(engine(), token)
    token_file().unlink(missing_ok=True)
    click.echo("signed out" if revoked else "was not signed in")


@click.command("whoami", help="The user the CLI acts as, and their roles.")
@clean_errors(*ERRORS)
def whoami_command() -> None:
    require_schema()
    staff = staff_for_token(engine(), current_token())
    if staff is None:
        raise click.ClickException("not signed in: ccm login NAME")
    click.echo(f"{staff.name} ({', '.join(staff.roles)})")


def init_app(app: Flask) -> None:
    for command in (users_group, login_command, logout_command, whoami_command):
        app.cli.add_command(command)
