"""Helpers shared by the CLI groups: the engine of the current app, clean errors."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click
from sqlalchemy.exc import DBAPIError
from flask import Flask, current_app, has_app_context
from flask.cli import ScriptInfo

from ccm.engine import Engine


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
    if engine().db.current_revision() is None:
        raise EmptyDatabaseError("the database has no schema yet: run `ccm db upgrade` first")


def clean_errors(*errors: type[BaseException]) -> Callable:
    """Turn the given exceptions, a missing schema and an unreachable database into one
    clear line on stderr and exit code 1."""

    def wrap(func: Callable) -> Callable:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except (EmptyDatabaseError, *errors) as exc:
                raise click.ClickException(str(exc)) from None
            except DBAPIError as exc:  # unreachable database, a value the database refuses, ...
                where = engine().db.masked_url()
                first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
                raise click.ClickException(f"database {where}: {first}") from None
            except RecursionError:
                raise click.ClickException("an expression is nested too deeply to evaluate") from None

        return inner

    return wrap
