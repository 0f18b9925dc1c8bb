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


@demo_group.command("sms-gateway", help="Run a local SMS gateway to send SMS through the HTTP gateway adapter: it keeps what "
                                         "it is given in <var_dir>/sms-gateway/messages.jsonl and reports each delivery to "
                                         "the engine's /inbound/sms, signed with [feedback] webhook_secret. Stop with Ctrl-C.")
@click.option("--port", type=click.IntRange(1, 65535), default=8025, show_default=True)
@click.option("--token", default="demo-token", show_default=True, help="The bearer token it accepts.")
@click.option("--callback", help="Where to report deliveries (default: [web] public_url + /inbound/sms).")
@click.option("--unreachable", multiple=True, metavar="PHONE", help="A number to report failed for good (repeat for several).")
def demo_sms_gateway(port: int, token: str, callback: str | None, unreachable: tuple[str, ...]) -> None:
    import threading

    from ccm.demo import DemoSmsGateway
    from ccm.runs.periodic import set_on_signal

    settings = engine().settings
    callback = callback or settings["web"]["public_url"].rstrip("/") + "/inbound/sms"
    secret = settings["feedback"]["webhook_secret"]
    folder = engine().var_dir / "sms-gateway"
    try:
        gateway = DemoSmsGateway(folder, token, callback=callback, secret=secret, port=port, unreachable=unreachable).start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    click.echo(f"SMS gateway on {gateway.url}, keeping messages in {folder / 'messages.jsonl'}")
    click.echo(f'send through it with: CCM_CHANNELS__SMS="sms+http://:{token}@127.0.0.1:{port}/v1/messages?preset=json&from=Northwind"')
    click.echo(f"receipts go to {callback}" if secret else "no [feedback] webhook_secret: receipts are not reported (set "
                                                           "CCM_FEEDBACK__WEBHOOK_SECRET for the gateway and `ccm serve`)")
    stop = threading.Event()
    set_on_signal(stop)  # Ctrl-C or SIGTERM
    while not stop.wait(1):  # with a timeout, so signals are handled promptly
        pass
    gateway.stop()
    click.echo(f"stopped after {gateway.received} messages")


def init_app(app: Flask) -> None:
    for group in (customers_group, feed_group, demo_group):
        app.cli.add_command(group)
