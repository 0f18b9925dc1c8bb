"""``ccm db``: create or upgrade the database schema."""
from __future__ import annotations

import click
from flask import Flask

from ccm.cli.common import clean_errors, engine, require_schema


@click.group("db", help="Create or upgrade the database.")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Create the database or upgrade it to the latest schema.")
@clean_errors()
def upgrade() -> None:
    database = engine().db
    database.upgrade()
    click.echo(f"database {database.masked_url()} at revision {database.current_revision()}")


@db_group.command("current", help="Print the schema revision of the database.")
@clean_errors()
def current() -> None:
    database = engine().db
    if not database.exists():
        require_schema()  # says there is no database there, and makes none
    click.echo(database.current_revision() or "empty")


def init_app(app: Flask) -> None:
    app.cli.add_command(db_group)
