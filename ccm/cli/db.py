"""``ccm db``: create or upgrade the database schema."""
from __future__ import annotations

import click
from flask import Flask

from ccm.cli.common import engine


@click.group("db", help="Create or upgrade the database.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Create the database or upgrade it to the latest schema.")
def upgrade() -> None:
    database = engine().db
    database.upgrade()
    click.echo(f"database {database.masked_url()} at revision {database.current_revision()}")


@db_group.command("current", help="Print the schema revision of the database.")
def current() -> None:
    click.echo(engine().db.current_revision() or "empty")


def init_app(app: Flask) -> None:
    app.cli.add_command(db_group)
