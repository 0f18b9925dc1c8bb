"""``ccm scheduler`` (the scheduler process) and ``ccm schedules`` (schedules as data)."""
from __future__ import annotations

import json

import click
from flask import Flask

from ccm.cli.common import clean_errors, engine, require_schema
from ccm.models.scheduling import JOBS
from ccm.scheduling import ScheduleError

EXAMPLES = """Examples:

\b
  ccm schedules add weekly-deals --job campaign --communication deals --cron '0 9 * * 3' --timezone Europe/Berlin
  ccm schedules add deals-local --job campaign --communication deals --cron '0 18 * * 2' --local-time 09:00
  ccm schedules add statements --job statement --communication statement --cron '0 2 1 * *' --timezone America/Chicago
  ccm schedules add renewals --job reminders --communication renewal --cron '0 7 * * *'
  ccm schedules add nightly-refresh --job segments-refresh --cron '30 1 * * *'
  ccm schedules add sweeper --job retry-sweeper --every 60
"""


@click.command("scheduler", help="Run the scheduler: the one active process runs the schedules; start more to stand by.")
@clean_errors()
def scheduler_command() -> None:
    from ccm.scheduling import holder_id, lease_holder, serve

    require_schema()
    current = lease_holder(engine())
    click.echo(f"scheduler {holder_id()}: " + (f"standing by ({current[0]} is active)" if current else "starting"))
    serve(engine())


@click.group("schedules", help="Schedules: when campaigns, statement cycles, reminders and upkeep run.", epilog=EXAMPLES)
def schedules_group() -> None:
    pass


@schedules_group.command("add", help="Add a schedule (a cron expression or an interval, in a time zone).", epilog=EXAMPLES)
@click.argument("name")
@click.option("--job", type=click.Choice(JOBS), required=True, help="What to run.")
@click.option("--communication", help="The campaign, statement or reminder communication (e.g. deals, statement, renewal).")
@click.option("--cron", help="Five fields: minute hour day month weekday, e.g. '0 9 * * 3' (Wednesdays at 09:00).")
@click.option("--every", "every_seconds", type=int, help="Instead of --cron: every this many seconds.")
@click.option("--timezone", default="UTC", show_default=True, help="The time zone of the cron expression (IANA name).")
@click.option("--audience", help="Campaigns and statements: only this segment's members.")
@click.option("--local-time", help="Campaigns: release each customer's message at this time (HH:MM) in their own time zone.")
@click.option("--period", type=click.Choice(["previous", "current"]), help="Statements: the month before the run (default) or its month.")
@clean_errors(ScheduleError)
def add(name: str, job: str, communication: str | None, cron: str | None, every_seconds: int | None, timezone: str,
        audience: str | None, local_time: str | None, period: str | None) -> None:
    from ccm.scheduling import add_schedule, list_schedules

    require_schema()
    options = {key: value for key, value in (("audience", audience), ("local_time", local_time), ("period", period)) if value}
    with engine().db.session() as session:
        add_schedule(session, name, job, communication=communication, cron=cron, every_seconds=every_seconds,
                     timezone=timezone, options=options)
        view = next(v for v in list_schedules(session) if v.name == name)
    click.echo(f"schedule {name} added: {job}{' of ' + view.communication if view.communication else ''}, {view.when} ({timezone}); next: {view.next_fire}")


@schedules_group.command("list", help="The schedules, their next fire time and their last execution.")
@click.option("--json", "as_json", is_flag=True)
@clean_errors(ScheduleError)
def list_command(as_json: bool) -> None:
    from ccm.scheduling import lease_holder
    from ccm.scheduling import list_schedules

    require_schema()
    with engine().db.reader() as session:
        views = list_schedules(session)
    holder = lease_holder(engine())
    if as_json:
        click.echo(json.dumps({"active_scheduler": holder[0] if holder else None, "schedules": [v.to_json() for v in views]}, indent=2))
        return
    click.echo(f"active scheduler: {holder[0] if holder else 'none running (start one: ccm scheduler)'}")
    for view in views:
        state = "paused" if view.paused else f"next {view.next_fire}"
        last = view.last and f"; last {view.last['fire_time']} {view.last['state']}" + (f" (run {view.last['run_id']})" if view.last["run_id"] else "")
        click.echo(f"{view.name:<22} {view.job:<16} {view.communication or '':<18} {view.when} {view.timezone}  {state}{last or ''}")


@schedules_group.command("history", help="Every execution of a schedule (also of a removed one, and of the built-in sweeper: "
                                          "ccm-retry-sweeper): when it was due, when it ran, the runs it made, errors.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@clean_errors(ScheduleError)
def history_command(name: str, as_json: bool) -> None:
    from ccm.scheduling import history

    require_schema()
    with engine().db.reader() as session:
        rows = history(session, name)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if rows and rows[0]["removed"]:
        click.echo(f"{name} was removed; its executions:")
    for row in rows:
        outcome = row["error"] or row["summary"] or ""
        runs = f" runs {', '.join(map(str, row['run_ids']))}" if len(row["run_ids"]) > 1 else ""
        click.echo(f"due {row['fire_time']}  ran {row['started_at']}  {row['state']:<9} {outcome}{runs}")


def _set_paused(name: str, paused: bool) -> None:
    from ccm.scheduling import set_paused

    require_schema()
    with engine().db.session() as session:
        set_paused(session, name, paused)
    click.echo(f"schedule {name} {'paused' if paused else 'resumed'}")


@schedules_group.command("pause", help="Pause a schedule (the active scheduler notices within seconds).")
@click.argument("name")
@clean_errors(ScheduleError)
def pause(name: str) -> None:
    _set_paused(name, True)


@schedules_group.command("resume", help="Resume a paused schedule.")
@click.argument("name")
@clean_errors(ScheduleError)
def resume(name: str) -> None:
    _set_paused(name, False)


@schedules_group.command("remove", help="Remove a schedule (its history stays: ccm schedules history NAME).")
@click.argument("name")
@clean_errors(ScheduleError)
def remove(name: str) -> None:
    from ccm.scheduling import remove_schedule

    require_schema()
    with engine().db.session() as session:
        remove_schedule(session, name)
    click.echo(f"schedule {name} removed")


def init_app(app: Flask) -> None:
    app.cli.add_command(scheduler_command)
    app.cli.add_command(schedules_group)
