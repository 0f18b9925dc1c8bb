"""The feedback loop's commands: ``ccm serve`` (the public web app), ``ccm tokens`` (API
tokens), ``ccm feedback bounces`` (DSN/ARF reports from a maildir), ``ccm report`` (what a
run or communication earned) and ``ccm customers erase``."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask

from ccm.cli.common import clean_errors, engine, flask_app, require_schema
from ccm.cli.identity import acting
from ccm.cli.imports import customers_group


@click.command("serve", help="Serve the public endpoints (tracking, unsubscribe, preference centre, callbacks, API) with waitress.")
@click.option("--host", help="Address to listen on (default: [web] host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: [web] port).")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True)
def serve(host: str | None, port: int | None, threads: int) -> None:
    import waitress

    require_schema()
    web = engine().settings["web"]
    host, port = host or web["host"], port or web["port"]
    click.echo(f"serving on http://{host}:{port} (public as {web['public_url']}); Ctrl-C stops")
    # Behind proxies ([web] proxy_hops) the app reads X-Forwarded-* itself, trusting exactly
    # that many hops; waitress would otherwise strip them before the app sees them.
    waitress.serve(flask_app(), host=host, port=port, threads=threads, ident="ccm",
                   clear_untrusted_proxy_headers=not web["proxy_hops"])


@click.group("tokens", help="API tokens for /api/v1 (only their hashes are stored).")
def tokens_group() -> None:
    pass


@tokens_group.command("create", help="Make a token; it is printed once.")
@click.argument("name")
@clean_errors(ValueError)
def token_create(name: str) -> None:
    from ccm.feedback import create_token

    require_schema()
    click.echo(create_token(engine(), name))


@tokens_group.command("list", help="The tokens, without their secrets.")
@click.option("--json", "as_json", is_flag=True)
@clean_errors()
def token_list(as_json: bool) -> None:
    from ccm.feedback import list_tokens

    require_schema()
    rows = list_tokens(engine())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = "revoked" if row["revoked"] else f"last used {row['last_used_at'] or 'never'}"
        click.echo(f"{row['name']:<40} created {row['created_at']}  {state}")


@tokens_group.command("revoke", help="Revoke a token at once.")
@click.argument("name")
@clean_errors(LookupError)
def token_revoke(name: str) -> None:
    from ccm.feedback import revoke_token

    require_schema()
    revoke_token(engine(), name)
    click.echo(f"token {name} revoked")


@click.group("feedback", help="Feedback that arrives as files: bounce and complaint reports.")
def feedback_group() -> None:
    pass


@feedback_group.command("bounces", help="Record the DSN bounces and ARF complaints in a maildir (each report once).")
@click.argument("maildir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@clean_errors(OSError)
def bounces(maildir: Path, as_json: bool) -> None:
    from ccm.feedback import read_reports

    require_schema()
    result = read_reports(engine(), maildir)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(result.by_type.items())) or "nothing new"
    click.echo(f"{maildir}: {kinds}; {result.duplicates} seen before; {result.unknown} about messages we do not know")


@click.group("report", help="What a run or a communication cost, who responded, what it earned, which variant won.")
def report_group() -> None:
    pass


def _report_options(func):  # type: ignore[no-untyped-def]
    func = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")(func)
    func = click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table to this CSV file.")(func)
    func = click.option("--chart", "chart_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="Also draw the response curve (and the experiment) to this .png or .svg file.")(func)
    return func


@report_group.command("run", help="The report of one run.")
@click.argument("run_id", type=int)
@_report_options
@clean_errors(LookupError, ValueError)
def report_run(run_id: int, as_json: bool, csv_file: Path | None, chart_file: Path | None) -> None:
    from ccm.feedback import response_report as run_report

    require_schema()
    with engine().db.reader() as session:
        report = run_report(session, run_id, engine().settings["costs"], engine().settings["feedback"]["receipt_channels"])
    _show(report, as_json, csv_file, chart_file)


@report_group.command("communication", help="The report of every run of a communication, with a row per run.")
@click.argument("name")
@_report_options
@clean_errors(LookupError, ValueError)
def report_communication(name: str, as_json: bool, csv_file: Path | None, chart_file: Path | None) -> None:
    from ccm.feedback import communication_report

    require_schema()
    with engine().db.reader() as session:  # a read: no write lock on SQLite while the report is made
        report = communication_report(session, name, engine().settings["costs"], engine().settings["feedback"]["receipt_channels"])
    _show(report, as_json, csv_file, chart_file)


def _show(report, as_json: bool, csv_file: Path | None, chart_file: Path | None) -> None:  # type: ignore[no-untyped-def]
    from ccm.feedback import print_report, write_csv

    if csv_file is not None:
        write_csv(report, csv_file)
    if chart_file is not None:
        from ccm.feedback import write_chart

        write_chart(report, chart_file)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        print_report(report, click.echo)
        for written in (csv_file, chart_file):
            if written is not None:
                click.echo(f"wrote {written}")


@customers_group.command("erase", help="Remove a customer's personal data from the database and the engine's files "
                         "(except what [erasure] retain keeps); keep only keyed hashes of their addresses as suppressions.")
@click.argument("external_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@clean_errors(LookupError, OSError)
def erase(external_id: str, yes: bool) -> None:
    from ccm.feedback import erase_customer

    require_schema()
    actor = acting("customers:erase", fresh=True)
    if not yes:
        click.confirm(f"Erase customer {external_id}'s personal data? This cannot be undone", abort=True)
    done = erase_customer(engine(), external_id, actor=actor.name, via="cli")
    click.echo(f"customer {external_id} erased (now erased-{done.customer_id})")
    for line in done.report():
        click.echo(line)


def init_app(app: Flask) -> None:
    for command in (serve, tokens_group, feedback_group, report_group):
        app.cli.add_command(command)
