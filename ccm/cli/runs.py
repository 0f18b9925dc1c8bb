"""``ccm run`` and ``ccm runs``: run a communication for a cycle, inspect and resume runs."""
from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from channels import ChannelConfigError
from ccm.cli.common import clean_errors, engine, require_schema
from ccm.cli.identity import operator
from ccm.runs import (EXECUTORS, ExecutorError, PlanError, PolicyError, RunReport, RunStateError, list_runs, report, resume,
                      run_cycle, set_state)
from ccm.authoring import TemplateStoreError
from ccm.staff import record

RUN_ERRORS = (PlanError, PolicyError, RunStateError, LookupError, TemplateStoreError, ChannelConfigError, ExecutorError)
EXECUTOR_HELP = "local: processes on this machine; celery: workers started with `ccm worker` (default: [ccm] executor)."

# Exit codes of `ccm run` and `ccm runs resume` for scripts and schedulers (README, "Run outcomes").
EXIT_CODES = {
    "completed": 0,  # every message sent, suppressed by rule, or gone by a fallback channel
    "paused": 3,  # by a person (ccm runs pause, Ctrl-C, SIGTERM) or after failures in a row: ccm runs resume ID
    "failed": 4,  # stopped on an error, or its books do not balance
    "waiting": 5,  # everything due is done; messages wait for a retry or a later time (the retry sweeper sends them)
    "undelivered": 6,  # completed, but some messages had no channel left: they need attention
    "interrupted": 7,  # its process (or a worker process) died: ccm runs resume ID, or the retry sweeper
}


def print_report(report: RunReport, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
        return
    click.echo(f"run {report.run_id} · {report.communication} · cycle {report.cycle} · {report.state}")
    if report.error:
        click.echo(f"  {report.error}")
    for channel in sorted(report.by_channel):
        states = report.by_channel[channel]
        counts = ", ".join(f"{states[s]} {s}" for s in sorted(states))
        where = report.outputs.get(channel)
        if where and channel == "print" and report.print_batches:
            # The streams for the post are made when the whole run is complete (see executor._produce_print).
            post = f"production-run{report.run_id}/" + ("" if report.state in ("completed", "undelivered") else " once the run is complete")
            where += f" ({len(report.print_batches)} batches; for the post: {post})"
        cost = f", cost {report.costs[channel]} {report.currency}" if channel in report.costs else ""
        click.echo(f"  {channel:<6} {counts}{cost}" + (f"  → {where}" if where else ""))
    named = (("suppressed", report.suppressed_reasons), ("dead", report.dead_reasons), ("failed, retrying", report.retry_reasons))
    for title, reasons in named:
        for reason, count in list(reasons.items())[:5]:
            click.echo(f"  {title}: {count} × {reason}")
    for fallback, count in report.fallbacks.items():
        click.echo(f"  fallback: {count} × {fallback}")
    for slot, contents in report.contents.items():
        click.echo(f"  {slot}: " + ", ".join(f"{count} × {content}" for content, count in contents.items()))
    if "total" in report.costs:
        click.echo(f"  cost   {report.costs['total']} {report.currency}")
    click.echo(report.reconciliation())


@click.command("run", help="Run a communication for a cycle: plan, render, deliver, reconcile (ccm run statement --cycle 2026-11).")
@click.argument("communication")
@click.option("--cycle", required=True, help="Billing cycle, YYYY-MM.")
@click.option("--feed", "feed_file", type=click.Path(dir_okay=False, path_type=Path), help="Import this billing feed first.")
@click.option("--workers", type=int, help="Worker processes (default: [ccm] workers, 0 = one per core).")
@click.option("--executor", type=click.Choice(EXECUTORS), help=EXECUTOR_HELP)
@click.option("--audience", metavar="SEGMENT", help="Only the members of this segment (default: the communication's audience, else everyone).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
@clean_errors(*RUN_ERRORS)
def run_command(
    communication: str, cycle: str, feed_file: Path | None, workers: int | None, executor: str | None, audience: str | None, as_json: bool
) -> None:
    require_schema()
    ccm = engine()
    actor = operator("runs:start")
    if feed_file is not None:
        from ccm.imports import ImportFileError, import_feed

        try:
            report = import_feed(ccm.db, feed_file, rejects_dir=ccm.var_dir / "rejects", progress=not as_json)
        except ImportFileError as exc:
            raise click.ClickException(str(exc)) from None
        if not as_json:
            click.echo(report.summary())
    _audit(actor, "start", f"{communication} {cycle}", audience=audience, feed=feed_file.name if feed_file else None)
    outcome = run_cycle(ccm, communication, cycle, workers=workers, progress=not as_json, executor=executor, audience=audience)
    if not as_json:
        plan = outcome.plan
        click.echo(f"planned {plan.planned} new messages for {plan.records_in} statements ({plan.already_planned} planned before)")
    print_report(outcome.report, as_json=as_json)
    _hint(outcome.report)


def _audit(actor: str, action: str, name: str, **details: object) -> None:
    with engine().db.session() as session:
        record(session, actor, action, "run", name, None, via="cli", **details)


def _hint(report: RunReport) -> None:
    """Say what to do next and exit with the outcome's own code (0 only for completed)."""
    if report.state == "paused":
        click.echo(f"run {report.run_id} is paused; finish it with: ccm runs resume {report.run_id}", err=True)
    elif report.state == "failed" and not report.balanced:
        click.echo(f"run {report.run_id} does not reconcile: {'; '.join(report.problems)}", err=True)
    elif report.state in ("failed", "interrupted"):
        click.echo(f"run {report.run_id} did not finish ({report.error}); finish it with: ccm runs resume {report.run_id}", err=True)
    elif report.state in ("waiting", "undelivered"):
        click.echo(f"run {report.run_id}: {report.error}", err=True)
    code = EXIT_CODES.get(report.state, EXIT_CODES["failed"])
    if code:
        raise SystemExit(code)


@click.group("runs", help="Inspect, pause, resume and cancel runs.")
def runs_group() -> None:
    pass


@runs_group.command("list", help="List runs, newest first.")
@click.option("--json", "as_json", is_flag=True)
@clean_errors()
def list_command(as_json: bool) -> None:
    require_schema()
    ccm = engine()
    with ccm.db.reader() as session:
        rows = [
            {"id": run.id, "communication": name, "cycle": run.cycle, "state": state, "records_in": run.records_in,
             "error": run.error or (f"its process {run.owner} died" if state == "interrupted" else None)}
            for run, name, state in list_runs(session, ccm.settings)
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        why = f"  {row['error']}" if row["state"] not in ("completed", "running", "planned") and row["error"] else ""
        click.echo(f"{row['id']:>5}  {row['communication']:<20} {row['cycle']:<10} {row['state']:<11} {row['records_in']} records{why}")


@runs_group.command("show", help="Counts per channel and state, and the reconciliation.")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@clean_errors(*RUN_ERRORS)
def show_command(run_id: int, as_json: bool) -> None:
    require_schema()
    print_report(report(engine(), run_id), as_json=as_json)


@runs_group.command("resume", help="Finish a paused, interrupted or failed run without sending anything twice.")
@click.argument("run_id", type=int)
@click.option("--workers", type=int)
@click.option("--retry-now", is_flag=True, help="Retry failed messages now instead of waiting for their backoff.")
@click.option("--executor", type=click.Choice(EXECUTORS), help=EXECUTOR_HELP)
@click.option("--json", "as_json", is_flag=True)
@clean_errors(*RUN_ERRORS)
def resume_command(run_id: int, workers: int | None, retry_now: bool, executor: str | None, as_json: bool) -> None:
    require_schema()
    _audit(operator("runs:control"), "resume", str(run_id), retry_now=retry_now or None)
    report = resume(engine(), run_id, workers=workers, retry_now=retry_now, progress=not as_json, executor=executor)
    print_report(report, as_json=as_json)
    _hint(report)


@runs_group.command("pause", help="Pause a run; workers stop after their current chunk.")
@click.argument("run_id", type=int)
@clean_errors(*RUN_ERRORS)
def pause_command(run_id: int) -> None:
    click.echo(f"run {run_id}: {_set_state(run_id, 'pause', 'paused')}")


@runs_group.command("cancel", help="Cancel a run: nothing more is sent; what was sent stays recorded.")
@click.argument("run_id", type=int)
@clean_errors(*RUN_ERRORS)
def cancel_command(run_id: int) -> None:
    click.echo(f"run {run_id}: {_set_state(run_id, 'cancel', 'cancelled')}")


def _set_state(run_id: int, action: str, state: str) -> str:
    actor = operator("runs:control")
    outcome = set_state(engine(), run_id, state)
    _audit(actor, action, str(run_id))
    return outcome


@click.command("worker", help="Start a Celery worker for the celery executor (broker: CCM_BROKER_URL).")
@click.option("--concurrency", type=int, help="Processes of this worker (default: one per core).")
@click.option("--loglevel", default="INFO", show_default=True)
@clean_errors(ExecutorError)
def worker_command(concurrency: int | None, loglevel: str) -> None:
    from ccm.runs import start_worker

    start_worker(engine().settings, concurrency, loglevel)


def init_app(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(run_command)
    app.cli.add_command(runs_group)
