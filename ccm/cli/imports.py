"""``ccm customers import``, ``ccm feed import`` and ``ccm demo data``."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask

from ccm.cli.common import clean_errors, engine, require_schema
from ccm.imports import ImportFileError, ImportReport, import_customers, import_feed

REJECTS_HELP = "Folder for the rejects file (default: <var_dir>/rejects)."


def _rejects_dir(given: str | None) -> Path:
    return Path(given) if given else engine().var_dir / "rejects"


def _print(report: ImportReport) -> None:
    click.echo(report.summary())


def _import_group(name: str, group_help: str, command_help: str, importer) -> click.Group:  # type: ignore[no-untyped-def]
    """``ccm NAME import FILE [--rejects-dir DIR]`` for one kind of file."""

    @click.group(name, help=group_help)
    def group() -> None:
        pass

    @group.command("import", help=command_help)
    @click.argument("file", type=click.Path(dir_okay=False, path_type=str))
    @click.option("--rejects-dir", type=click.Path(file_okay=False, path_type=str), help=REJECTS_HELP)
    @clean_errors(ImportFileError)
    def import_command(file: str, rejects_dir: str | None) -> None:
        require_schema()
        _print(importer(engine().db, file, rejects_dir=_rejects_dir(rejects_dir)))

    return group


customers_group = _import_group(
    "customers", "Customer data.", "Import customers from a CSV or JSONL file (upsert by external_id).", import_customers
)
feed_group = _import_group(
    "feed", "Billing data feeds.", "Import billing statements from a CSV or JSONL file (upsert by account and period).", import_feed
)


@click.group("demo", help="Demo data to try the engine.")
def demo_group() -> None:
    pass


def _cycle(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from ccm.field_values import FieldError, period

    try:
        return period(value, "cycle")
    except FieldError as exc:
        raise click.BadParameter(exc.reason) from None


@demo_group.command("data", help="Write a demo customers.csv and feed.jsonl (with a few bad rows on purpose).")
@click.option("--customers", "count", type=click.IntRange(0, 1_000_000), default=500, show_default=True)
@click.option("--cycle", default="2026-11", show_default=True, callback=_cycle, help="Billing period YYYY-MM.")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--history", type=click.IntRange(0, 36), default=0, show_default=True,
              help="Also write history.jsonl: this many months of statements before the cycle (spend trends for tiers and lifecycle).")
@click.option("--out", type=click.Path(file_okay=False, path_type=str), help="Folder (default: <var_dir>/demo).")
def demo_data(count: int, cycle: str, seed: int, history: int, out: str | None) -> None:
    from ccm.demo import write_demo_data

    folder = Path(out) if out else engine().var_dir / "demo"
    customers, feed = write_demo_data(folder, customers=count, cycle=cycle, seed=seed, history=history)
    click.echo(f"wrote {customers} and {feed}" + (f" and {folder / 'history.jsonl'}" if history else ""))
    click.echo(f"next: ccm customers import {customers} && ccm feed import {feed}")


@demo_group.command("users", help="One console user per role (admin, marketer, approver, billing, scheduler, service, "
                                   "viewer), each with a new random password, printed once.")
def demo_users_command() -> None:
    from ccm.cli.identity import shell_actor
    from ccm.demo import demo_users

    made = demo_users(engine(), actor=shell_actor())
    web = engine().settings["web"]
    click.echo(f"console users (sign in at {web['public_url'].rstrip('/')}/console after `ccm serve`):")
    for name, role, password in made:
        click.echo(f"  {name:<10} {password}   ({role})")


def init_app(app: Flask) -> None:
    for group in (customers_group, feed_group, demo_group):
        app.cli.add_command(group)
