"""Helpers shared by the CLI groups: the engine of the current app, clean errors."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click
from sqlalchemy.exc import DBAPIError
from flask import Flask, current_app, has_app_context
from flask.cli import ScriptInfo

from ccm.db import Database, DatabaseLocationError
from ccm.wiring import Engine


def flask_app() -> Flask:
    """The app this command runs for (``ccm`` and ``flask --app app`` alike)."""
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined]
    return click.get_current_context().ensure_object(ScriptInfo).load_app()


def engine() -> Engine:
    """The engine of the app this command runs for."""
    return flask_app().extensions["ccm"]


class EmptyDatabaseError(Exception):
    """The database exists but has no schema."""


def require_schema() -> None:
    database = engine().db
    if not database.exists():  # never make an empty database where a typo points
        raise EmptyDatabaseError(f"no database at {database.file}: check [ccm] database_url (CCM_DATABASE_URL), "
                                 "or make it with `ccm db upgrade`")
    if database.current_revision() is None:
        raise EmptyDatabaseError("the database has no schema yet: run `ccm db upgrade` first")


def database_problem(exc: DBAPIError, database: Database | None = None) -> str:
    """One line for a database error: where, and what the database said first."""
    database = database or engine().db
    if not database.exists():
        return (f"no database at {database.file}: check [ccm] database_url (CCM_DATABASE_URL), "
                "or make it with `ccm db upgrade`")
    first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    return f"database {database.masked_url()}: {first}"


def clean_errors(*errors: type[BaseException]) -> Callable:
    """Turn the given exceptions, a missing schema and an unreachable database into one
    clear line on stderr and exit code 1."""

    def wrap(func: Callable) -> Callable:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except (EmptyDatabaseError, DatabaseLocationError, *errors) as exc:
                raise click.ClickException(str(exc)) from None
            except DBAPIError as exc:  # unreachable database, a value the database refuses, ...
                raise click.ClickException(database_problem(exc)) from None
            except RecursionError:
                raise click.ClickException("an expression is nested too deeply to evaluate") from None

        return inner

    return wrap
