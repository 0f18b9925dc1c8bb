"""The CCM engine's Flask app factory and the ``ccm`` command.

``create_app(config)`` builds the app; nothing builds one at import time. ``ccm ...`` and
``flask --app app ...`` run the same commands.
"""
from __future__ import annotations

import sys
from typing import Any, Mapping

import click
from flask import Flask
import flask.cli
from flask.cli import FlaskGroup

from ccm.wiring import Engine
from ccm.logs import configure_logging
from ccm.settings import SettingsError, load_settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``config`` is a mapping of settings sections (tests pass their own)."""
    settings = load_settings(config)
    configure_logging(settings["ccm"]["log_level"])
    # No app-level template or static folder: ``templates/`` is the customer template
    # library, which only the sandbox of ``documents`` may render. Web pages live in
    # ``ccm/web/pages``.
    app = Flask(__name__, template_folder=None, static_folder=None)
    app.config["CCM"] = settings
    from ccm.db import Database

    engine = Engine(settings=settings, db=Database(settings["ccm"]["database_url"]))
    app.extensions["ccm"] = engine

    import ccm.cli
    import ccm.web

    ccm.cli.init_app(app)
    ccm.web.init_app(app)
    return app


def _factory() -> Flask:
    try:
        return create_app()
    except SettingsError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


cli = FlaskGroup(
    name="ccm",
    create_app=_factory,
    add_default_commands=False,  # Flask's own `run` (dev server) would shadow `ccm run`
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
    help="Customer communication management engine: statements, bills and campaigns by PDF, e-mail and SMS.",
)


# `ccm` always builds this app: Flask's --app, --env-file and --debug options do not apply.
cli.params = [p for p in cli.params if p.name not in ("app", "env_file", "debug")]
cli._loaded_plugin_commands = True  # installed packages' `flask.commands` plugins (Flask-Limiter's) are not part of `ccm`
cli.add_command(flask.cli.shell_command)
cli.add_command(flask.cli.routes_command)


def main() -> None:
    """``ccm``: every command answers an error in one line (exit 1), database errors of
    commands that do not name their own included."""
    from sqlalchemy.exc import DBAPIError

    from ccm.cli.common import database_problem

    try:
        cli.main(prog_name="ccm", standalone_mode=True)
    except DBAPIError as exc:
        from ccm.db import Database

        database = Database(load_settings()["ccm"]["database_url"])  # the one the command used (no connection made here)
        click.echo(f"Error: {database_problem(exc, database)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
