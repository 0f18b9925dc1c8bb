"""``ccm service-accounts`` and ``ccm keys``: other systems that call the API, and their keys.

Both act as a signed-in user with ``users:manage`` (``ccm login``) and are audited. A key
is printed once; only its hash is kept.
"""
from __future__ import annotations

import json

import click
from flask import Flask

from ccm.cli.common import clean_errors, engine, require_schema
from ccm.cli.identity import acting
from ccm.staff import UserError, create_key, create_service_account, list_keys, list_users, revoke_key

DEFAULT_DAYS = 365


@click.group("service-accounts", help="Accounts of other systems that call the API, with roles like staff.")
def accounts_group() -> None:
    pass


@accounts_group.command("create", help="Make a service account with one or more roles (it never signs in to the console).")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="A role (repeat for several), as for `ccm users create`.")
@click.option("--display-name", default="", help="What the account is, e.g. 'CRM of the call centre'.")
@clean_errors(UserError)
def create_account_command(name: str, roles: tuple[str, ...], display_name: str) -> None:
    require_schema()
    made = create_service_account(engine(), name, roles, actor=acting("users:manage").name, display_name=display_name)
    click.echo(f"service account {made.name} created with roles {', '.join(made.roles)}; make a key: ccm keys create {made.name}")


@accounts_group.command("list", help="The service accounts and their roles.")
@click.option("--json", "as_json", is_flag=True)
@clean_errors(UserError)
def list_accounts_command(as_json: bool) -> None:
    require_schema()
    rows = [row for row in list_users(engine()) if row["kind"] == "service"]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        click.echo(f"{row['name']:<20} {', '.join(row['roles']):<30} {'' if row['active'] else 'disabled'}")
    if not rows:
        click.echo("no service accounts yet: ccm service-accounts create NAME --role ROLE")


@click.group("keys", help="API keys of service accounts (only their hashes are stored).")
def keys_group() -> None:
    pass


@keys_group.command("create", help="Make a key for a service account; it is printed once.")
@click.argument("account")
@click.option("--days", type=click.IntRange(1, 3650), default=DEFAULT_DAYS, show_default=True, help="Days until it expires.")
@clean_errors(UserError)
def create_key_command(account: str, days: int) -> None:
    require_schema()
    made = create_key(engine(), account, days=days, actor=acting("users:manage").name)
    click.echo(f"key {made.name} for {account}, expires {made.expires_at:%Y-%m-%d %H:%M} UTC; keep it now, it is not shown again:",
               err=True)
    click.echo(made.key)


@keys_group.command("list", help="The keys, without their secrets.")
@click.option("--json", "as_json", is_flag=True)
@clean_errors(UserError)
def list_keys_command(as_json: bool) -> None:
    require_schema()
    acting("users:manage")
    rows = list_keys(engine())
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        state = "revoked" if row["revoked"] else f"expires {row['expires_at']:%Y-%m-%d}, last used {row['last_used_at'] or 'never'}"
        click.echo(f"{row['name']:<30} {row['account']:<20} {state}")
    if not rows:
        click.echo("no keys yet: ccm keys create ACCOUNT")


@keys_group.command("revoke", help="Revoke a key at once (its NAME, as `ccm keys list` shows it).")
@click.argument("name")
@clean_errors(UserError)
def revoke_key_command(name: str) -> None:
    require_schema()
    revoke_key(engine(), name, actor=acting("users:manage").name)
    click.echo(f"key {name} revoked")


def init_app(app: Flask) -> None:
    for command in (accounts_group, keys_group):
        app.cli.add_command(command)
