"""Schedules (recurring batch sends: campaigns, statement cycles, reminders, the segment
refresh), as the scheduler desk has them: list, create, read with the next fire times,
change, pause, resume, remove (each audited) and their executions; a cron expression
checked before it is saved. The running ``ccm scheduler`` notices changes by itself.

And triggers: the event types communications listen to (``POST /events`` with that type
sends them at once), with the runs of the day their messages went out in."""
from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import func, select

from ccm.communications import ensure_built_in
from ccm.models import Communication, Message, Run
from ccm.models.scheduling import JOBS, Schedule
from ccm.scheduling import (CRON_FIELDS, ScheduleError, add_schedule, audit_changes, audit_details, check_cron, get_schedule, history,
                            next_fire_times, remove_schedule, set_paused, trigger_of, update_schedule)
from ccm.scheduling.service import NAME
from ccm.staff import record
from ccm.web.api.auth import caller_name, engine, require
from ccm.web.api.fields import UtcDateTime
from ccm.web.api.idempotency import idempotent
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import errors, fail
from ccm.web.api.templates import NO_NUL

blueprint = Blueprint("schedules", __name__, url_prefix="/api/v1", description="Schedules and triggers")

NEXT = 5  # fire times given per schedule
TRIGGER_DAYS = 14  # days of runs given per trigger


class Options(ma.Schema):
    audience = ma.fields.String(validate=[ma.validate.Length(1, 100), NO_NUL],
                                metadata={"description": "campaign, statement: a segment instead of the communication's audience"})
    local_time = ma.fields.String(validate=ma.validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"),
                                  metadata={"description": "campaign: HH:MM, sent at that time in each customer's zone"})
    period = ma.fields.String(validate=ma.validate.OneOf(("previous", "current")),
                              metadata={"description": "statement: the month before the run (previous, the default) or its own"})


class ScheduleIn(ma.Schema):
    """What a schedule does and when: a cron expression or an interval, in a time zone."""

    job = ma.fields.String(required=True, validate=ma.validate.OneOf(JOBS))
    communication = ma.fields.String(load_default=None, allow_none=True, validate=[ma.validate.Length(1, 100), NO_NUL],
                                     metadata={"description": "campaign, statement and reminders: the communication to send"})
    cron = ma.fields.String(load_default=None, allow_none=True, validate=[ma.validate.Length(1, 100), NO_NUL],
                            metadata={"description": "five fields, minute hour day month weekday, as crontab(5) reads them"})
    every_seconds = ma.fields.Integer(load_default=None, allow_none=True, validate=ma.validate.Range(1, 366 * 86400),
                                      metadata={"description": "instead of cron: every so many seconds"})
    timezone = ma.fields.String(load_default="UTC", validate=[ma.validate.Length(1, 64), NO_NUL],
                                metadata={"description": "an IANA zone, e.g. Europe/Berlin"})
    options = ma.fields.Nested(Options, load_default=dict)


class NewSchedule(ScheduleIn):
    name = ma.fields.String(required=True, validate=ma.validate.Regexp(NAME.pattern),
                            metadata={"description": "letters, digits, '.', '_' and '-'"})


class ScheduleOut(ma.Schema):
    name = ma.fields.String(required=True)
    job = ma.fields.String(required=True)
    communication = ma.fields.String(required=True, allow_none=True)
    cron = ma.fields.String(required=True, allow_none=True)
    every_seconds = ma.fields.Integer(required=True, allow_none=True)
    timezone = ma.fields.String(required=True)
    options = ma.fields.Dict(required=True)
    paused = ma.fields.Boolean(required=True)
    next_fire_times = ma.fields.List(ma.fields.DateTime(), required=True,
                                     metadata={"description": f"the next {NEXT}, in the schedule's zone; none while paused"})
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class ExecutionOut(ma.Schema):
    fire_time = ma.fields.String(required=True, metadata={"description": "when it was due, UTC"})
    started_at = ma.fields.String(required=True)
    finished_at = ma.fields.String(required=True, allow_none=True)
    state = ma.fields.String(required=True, metadata={"description": "running, completed, failed, missed, coalesced or skipped"})
    run_id = ma.fields.Integer(required=True, allow_none=True)
    run_ids = ma.fields.List(ma.fields.Integer(), required=True, metadata={"description": "every run it made"})
    summary = ma.fields.String(required=True, allow_none=True)
    error = ma.fields.String(required=True, allow_none=True)
    removed = ma.fields.Boolean(required=True, metadata={"description": "made by a schedule since removed"})


class CronArgs(ma.Schema):
    expression = ma.fields.String(required=True, validate=[ma.validate.Length(1, 100), NO_NUL])
    timezone = ma.fields.String(load_default="UTC", validate=[ma.validate.Length(1, 64), NO_NUL])


class CronOut(ma.Schema):
    expression = ma.fields.String(required=True)
    valid = ma.fields.Boolean(required=True)
    error = ma.fields.String(required=True, allow_none=True)
    field = ma.fields.String(required=True, allow_none=True, metadata={"description": f"one of {', '.join(CRON_FIELDS)}"})
    column = ma.fields.Integer(required=True, allow_none=True, metadata={"description": "where the error is, 1-based"})
    next_fire_times = ma.fields.List(ma.fields.DateTime(), required=True)


def _out(schedule: Schedule) -> dict[str, Any]:
    times = [] if schedule.paused else next_fire_times(trigger_of(schedule), NEXT)
    return {"name": schedule.name, "job": schedule.job, "communication": schedule.communication, "cron": schedule.cron,
            "every_seconds": schedule.every_seconds, "timezone": schedule.timezone, "options": schedule.options or {},
            "paused": schedule.paused, "next_fire_times": times, "created_at": schedule.created_at, "updated_at": schedule.updated_at}


def _get(session: Any, name: str) -> Schedule:
    try:
        return get_schedule(session, name)
    except ScheduleError as exc:
        fail(404, str(exc), field="name")


def _fields(body: dict) -> dict[str, Any]:
    return {key: body[key] for key in ("job", "communication", "cron", "every_seconds", "timezone", "options")}


@blueprint.get("/schedules")
@require(blueprint, "schedules:view")
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, page_schema(ScheduleOut, "SchedulePage"))
def listing(args: dict):  # type: ignore[no-untyped-def]
    """Every schedule by name, with its next fire times; in pages."""
    query = select(Schedule).order_by(Schedule.id).limit(args["limit"] + 1)
    if args["after"] is not None:
        query = query.where(Schedule.id > args["after"])
    with engine().db.reader() as session:
        rows = list(session.scalars(query))
        result = page(rows, args["limit"], lambda schedule: schedule.id)
        result["items"] = [_out(schedule) for schedule in result["items"]]
    return result


@blueprint.post("/schedules")
@require(blueprint, "schedules:edit")
@idempotent(blueprint)
@errors(blueprint, 409)
@blueprint.arguments(NewSchedule)
@blueprint.response(201, ScheduleOut)
def create(body: dict):  # type: ignore[no-untyped-def]
    """Add a schedule, checked as the desk checks it (the cron expression, the zone, the
    communication, the options); audited."""
    name, fields = body["name"], _fields(body)
    with engine().db.session() as session:
        if session.scalar(select(Schedule.id).where(Schedule.name == name)) is not None:
            fail(409, f"a schedule named {name} exists: change it with PUT", field="name")
        try:
            schedule = add_schedule(session, name, **fields)
        except ScheduleError as exc:
            fail(422, str(exc), field=exc.field)
        record(session, caller_name(), "schedule.create", "schedule", name, **audit_details(fields))
        return _out(schedule)


@blueprint.get("/schedules/<name>")
@require(blueprint, "schedules:view")
@errors(blueprint, 404)
@blueprint.response(200, ScheduleOut)
def get(name: str):  # type: ignore[no-untyped-def]
    """A schedule and its next fire times."""
    with engine().db.reader() as session:
        return _out(_get(session, name))


@blueprint.put("/schedules/<name>")
@require(blueprint, "schedules:edit")
@idempotent(blueprint)
@errors(blueprint, 404)
@blueprint.arguments(ScheduleIn)
@blueprint.response(200, ScheduleOut)
def change(body: dict, name: str):  # type: ignore[no-untyped-def]
    """Change what a schedule does and when (its name, paused state and history stay);
    audited with what changed."""
    with engine().db.session() as session:
        _get(session, name)
        try:
            changes = update_schedule(session, name, **_fields(body))
        except ScheduleError as exc:
            fail(422, str(exc), field=exc.field)
        if changes:
            record(session, caller_name(), "schedule.edit", "schedule", name, **audit_changes(changes))
        return _out(_get(session, name))


@blueprint.delete("/schedules/<name>")
@require(blueprint, "schedules:edit")
@errors(blueprint, 404)
@blueprint.response(204)
def remove(name: str):  # type: ignore[no-untyped-def]
    """Remove a schedule; its executions stay in the history, under its name; audited."""
    with engine().db.session() as session:
        schedule = _get(session, name)
        what = {"job": schedule.job, "communication": schedule.communication, "cron": schedule.cron,
                "every_seconds": schedule.every_seconds, "timezone": schedule.timezone}
        remove_schedule(session, name)
        record(session, caller_name(), "schedule.remove", "schedule", name, **what)
    return None


def _paused(name: str, paused: bool) -> dict[str, Any]:
    with engine().db.session() as session:
        was = _get(session, name).paused
        schedule = set_paused(session, name, paused)
        if was != paused:
            record(session, caller_name(), "schedule.pause" if paused else "schedule.resume", "schedule", name)
        return _out(schedule)


@blueprint.post("/schedules/<name>/pause")
@require(blueprint, "schedules:edit")
@errors(blueprint, 404)
@blueprint.response(200, ScheduleOut)
def pause(name: str):  # type: ignore[no-untyped-def]
    """Pause a schedule: it fires no more until resumed (pausing it again changes nothing)."""
    return _paused(name, True)


@blueprint.post("/schedules/<name>/resume")
@require(blueprint, "schedules:edit")
@errors(blueprint, 404)
@blueprint.response(200, ScheduleOut)
def resume(name: str):  # type: ignore[no-untyped-def]
    """Resume a paused schedule from its next fire time (the times it missed are not made up)."""
    return _paused(name, False)


@blueprint.get("/schedules/<name>/executions")
@require(blueprint, "schedules:view")
@errors(blueprint, 404)
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, page_schema(ExecutionOut, "ExecutionPage"))
def executions(args: dict, name: str):  # type: ignore[no-untyped-def]
    """A schedule's executions, the latest first (a removed schedule's too, under its
    name; the built-in sweeper's as ccm-retry-sweeper): due when, what state, the runs it
    made; in pages."""
    start = args["after"] + 1 if args["after"] is not None else 0
    with engine().db.reader() as session:
        try:
            rows = history(session, name, limit=start + args["limit"] + 1)
        except ScheduleError as exc:
            fail(404, str(exc), field="name")
    result = page(list(enumerate(rows))[start:], args["limit"], lambda item: item[0])
    result["items"] = [row for _, row in result["items"]]
    return result


@blueprint.get("/cron-check")
@require(blueprint, "schedules:view")
@blueprint.arguments(CronArgs, location="query")
@blueprint.response(200, CronOut)
def cron_check(args: dict):  # type: ignore[no-untyped-def]
    """Check a cron expression before saving it: the error and where it is, or its next
    fire times in the zone."""
    try:
        check = check_cron(args["expression"], args["timezone"], NEXT)
    except ScheduleError as exc:
        fail(422, str(exc), field="timezone")
    return {"expression": check.expression, "valid": check.error is None, "error": check.error, "field": check.field,
            "column": check.column, "next_fire_times": check.times}


# --------------------------------------------------------------------------- triggers

class TriggerRun(ma.Schema):
    run_id = ma.fields.Integer(required=True)
    cycle = ma.fields.String(required=True, metadata={"description": "the day, YYYY-MM-DD (UTC)"})
    state = ma.fields.String(required=True)
    messages = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                              metadata={"description": "messages by state"})


class Listener(ma.Schema):
    communication = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "transactional, marketing, ..."})
    channels = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "in the order tried"})
    runs = ma.fields.List(ma.fields.Nested(TriggerRun), required=True,
                          metadata={"description": f"its runs of the last {TRIGGER_DAYS} days, the latest first"})


class TriggerOut(ma.Schema):
    event_type = ma.fields.String(required=True)
    communications = ma.fields.List(ma.fields.Nested(Listener), required=True)


class TriggerList(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TriggerOut), required=True)


def _triggers(event_type: str | None = None) -> list[dict[str, Any]]:
    since = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=TRIGGER_DAYS)).strftime("%Y-%m-%d")
    found: dict[str, list[dict[str, Any]]] = {}
    with engine().db.session() as session:  # the built-in communications are created when missing
        ensure_built_in(session)
        for communication in session.scalars(select(Communication).order_by(Communication.name)):
            kind = communication.config.get("trigger")
            if not kind or event_type not in (None, kind):
                continue
            found.setdefault(kind, []).append(_listener(session, communication, since))
    return [{"event_type": kind, "communications": listeners} for kind, listeners in sorted(found.items())]


def _listener(session: Any, communication: Communication, since: str) -> dict[str, Any]:
    runs = list(session.scalars(select(Run).where(Run.communication_id == communication.id, Run.cycle >= since)
                                .order_by(Run.cycle.desc())))
    counts: dict[int, dict[str, int]] = {}
    if runs:
        for run_id, state, count in session.execute(select(Message.run_id, Message.state, func.count()).where(
                Message.run_id.in_([run.id for run in runs])).group_by(Message.run_id, Message.state)):
            counts.setdefault(run_id, {})[state] = count
    order = (communication.config.get("channel_policy") or {}).get("order") or []
    return {"communication": communication.name, "title": communication.title, "kind": communication.kind,
            "channels": [step["channel"] for step in order if isinstance(step, dict) and "channel" in step],
            "runs": [{"run_id": run.id, "cycle": run.cycle, "state": run.state, "messages": counts.get(run.id, {})} for run in runs]}


@blueprint.get("/triggers")
@require(blueprint, "schedules:view")
@blueprint.response(200, TriggerList)
def triggers():  # type: ignore[no-untyped-def]
    """The event types communications listen to, each with its communications and the
    runs of the day their messages went out in (messages by state)."""
    return {"items": _triggers()}


@blueprint.get("/triggers/<event_type>")
@require(blueprint, "schedules:view")
@errors(blueprint, 404)
@blueprint.response(200, TriggerOut)
def trigger(event_type: str):  # type: ignore[no-untyped-def]
    """One event type: the communications that listen to it and their runs of the day."""
    found = _triggers(event_type)
    if not found:
        fail(404, f"no communication listens to {event_type!r}", field="event_type")
    return found[0]
