"""The scheduler desk: schedules as a list and as a calendar of the coming weeks, each with
its next fire times in its own zone and the viewer's; create, edit, pause, resume and remove
(each audited), the cron expression checked as it is typed; every execution with its outcome
and the runs it made. The scheduling itself is ``ccm.scheduling``'s; the running ``ccm
scheduler`` notices changes by itself."""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import available_timezones

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ccm.models import utcnow
from ccm.models.scheduling import BUILT_IN_SWEEPER, JOBS
from ccm.scheduling import (CRON_FIELDS, ScheduleError, add_schedule, audit_changes, audit_details, check_cron, get_schedule, history, list_schedules,
                            next_fire_times, remove_schedule, schedulable_communications, set_paused, trigger_of, upcoming,
                            update_schedule)
from ccm.segments import segment_names
from ccm.web.console import audit, blueprint, engine, requires, viewer_zone

ZONES = sorted(available_timezones())
NEXT = 5  # fire times shown per schedule in the list and on its page
PER_SCHEDULE = 40  # fire times shown per schedule in the calendar; the rest are counted
WEEKS = (5, 8, 13)  # the first: this week and four more, so at least four weeks ahead
OPTION_FIELDS = ("audience", "local_time", "period")


def _page(template: str, status: int = 200, **context: Any) -> Response:
    """A page of the desk, which knows the viewer's zone (times show in it and the schedule's)."""
    page = render_template(f"console/schedules/{template}", viewer=viewer_zone().key, jobs=_job_labels(), **context)
    return Response(page, status=status)


def _job_labels() -> dict[str, str]:
    return {"campaign": _("Campaign"), "statement": _("Statement cycle"), "reminders": _("Reminders"),
            "segments-refresh": _("Segment refresh"), "retry-sweeper": _("Retry sweeper")}


def _now() -> dt.datetime:
    return utcnow().replace(tzinfo=dt.timezone.utc)


@blueprint.route("/schedules")
@requires("schedules:view")
def schedules() -> Response:
    with engine().db.reader() as session:
        views = list_schedules(session)
        times = {view.name: next_fire_times(trigger_of(get_schedule(session, view.name)), NEXT) for view in views if not view.paused}
    lasts = {view.name: _moment(view.last["fire_time"]) for view in views if view.last}
    return _page("list.html", views=views, times=times, lasts=lasts, sweeper=BUILT_IN_SWEEPER)


@blueprint.route("/schedules/calendar")
@requires("schedules:view")
def schedules_calendar() -> Response:
    weeks = request.args.get("weeks", type=int)
    weeks = weeks if weeks in WEEKS else WEEKS[0]
    zone = viewer_zone()
    today = _now().astimezone(zone).date()
    first = _parse_date(request.args.get("from")) or today
    first -= dt.timedelta(days=first.weekday())  # weeks start on Monday
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(first + dt.timedelta(weeks=weeks), dt.time(), zone)
    with engine().db.reader() as session:
        rows = upcoming(session, max(start, _now()), end, PER_SCHEDULE)
    days: dict[dt.date, list[tuple[dt.datetime, Any]]] = {first + dt.timedelta(days=n): [] for n in range(weeks * 7)}
    for row in rows:
        for moment in row.times:
            days[moment.astimezone(zone).date()].append((moment, row))
    for entries in days.values():
        entries.sort(key=lambda entry: (entry[0], entry[1].name))
    return _page("calendar.html", days=days, rows=rows, weeks=weeks, choices=WEEKS, today=today,
                 earlier=first - dt.timedelta(weeks=weeks), later=first + dt.timedelta(weeks=weeks), end=end - dt.timedelta(days=1))


def _parse_date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@blueprint.route("/schedules/check", methods=["POST"])
@requires("schedules:view")
def schedules_check() -> Response:
    """The cron expression as typed: its error and where, or its next five fire times."""
    expression = request.form.get("cron", "").strip()
    timezone = request.form.get("timezone", "").strip() or "UTC"
    if not expression:
        return _page("_check.html", check=None, zone_error=None, timezone=timezone)
    try:
        check = check_cron(expression, timezone, NEXT)
    except ScheduleError as exc:
        return _page("_check.html", check=None, zone_error=str(exc), timezone=timezone)
    return _page("_check.html", check=check, zone_error=None, timezone=timezone, field_names=_field_names())


def _field_names() -> dict[str, str]:
    return dict(zip(CRON_FIELDS, (_("minute"), _("hour"), _("day of the month"), _("month"), _("weekday"))))


@blueprint.route("/schedules/new", methods=["GET", "POST"])
@requires("schedules:edit")
def schedules_new() -> Response:
    form = dict(request.form) if request.method == "POST" else {"timezone": viewer_zone().key, "job": "campaign"}
    if request.method == "POST":
        name = form.get("name", "").strip()
        try:
            fields = _fields(form)
            with engine().db.session() as session:
                add_schedule(session, name, **fields)
        except ScheduleError as exc:
            return _form(form, exc, status=422)
        audit("schedule.create", "schedule", name, **audit_details(fields))
        flash(_("Schedule %(name)s added.", name=name))
        return redirect(url_for("console.schedules_detail", name=name))
    return _form(form)


@blueprint.route("/schedules/<name>/edit", methods=["GET", "POST"])
@requires("schedules:edit")
def schedules_edit(name: str) -> Response:
    if request.method == "POST":
        form = dict(request.form)
        try:
            fields = _fields(form)
            with engine().db.session() as session:
                changes = update_schedule(session, name, **fields)
        except ScheduleError as exc:
            if exc.field is None and not _exists(name):
                abort(404)
            return _form(form, exc, name=name, status=422)
        if changes:
            audit("schedule.edit", "schedule", name, **audit_changes(changes))
            flash(_("Schedule %(name)s changed.", name=name))
        else:
            flash(_("Nothing changed."))
        return redirect(url_for("console.schedules_detail", name=name))
    with engine().db.reader() as session:
        schedule = _found(session, name)
        form = {"job": schedule.job, "communication": schedule.communication or "", "cron": schedule.cron or "",
                "every_seconds": str(schedule.every_seconds or ""), "timezone": schedule.timezone,
                **{key: str(value) for key, value in (schedule.options or {}).items()}}
    return _form(form, name=name)


def _exists(name: str) -> bool:
    with engine().db.reader() as session:
        try:
            get_schedule(session, name)
        except ScheduleError:
            return False
    return True


def _found(session: Any, name: str) -> Any:
    try:
        return get_schedule(session, name)
    except ScheduleError:
        abort(404)


def _fields(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as ``add_schedule``/``update_schedule`` take them."""
    every = form.get("every_seconds", "").strip()
    if every and not every.isdigit():
        raise ScheduleError(_("a whole number of seconds, e.g. 3600"), "every_seconds")
    options = {key: form[key].strip() for key in OPTION_FIELDS if form.get(key, "").strip()}
    return {"job": form.get("job", ""), "communication": form.get("communication", "").strip() or None,
            "cron": " ".join(form.get("cron", "").split()) or None, "every_seconds": int(every) if every else None,
            "timezone": form.get("timezone", "").strip() or "UTC", "options": options}


def _form(form: dict[str, str], error: ScheduleError | None = None, name: str | None = None, status: int = 200) -> Response:
    with engine().db.session() as session:  # the built-in communications are created when missing
        communications = schedulable_communications(session)
        segments = sorted(segment_names(session))
    check = None
    if form.get("cron"):
        try:
            check = check_cron(form["cron"], form.get("timezone") or "UTC", NEXT)
        except ScheduleError:
            check = None
    return _page("form.html", status, form=form, error=error, name=name, zones=ZONES, communications=communications,
                 segments=segments, check=check, field_names=_field_names(), timezone=form.get("timezone") or "UTC")


@blueprint.route("/schedules/<name>")
@requires("schedules:view")
def schedules_detail(name: str) -> Response:
    with engine().db.reader() as session:
        view = next((v for v in list_schedules(session) if v.name == name), None)
        times = next_fire_times(trigger_of(get_schedule(session, name)), NEXT) if view and not view.paused else []
        try:
            executions = history(session, name)
        except ScheduleError:  # no such schedule, and none by that name ran
            if name != BUILT_IN_SWEEPER:
                abort(404)
            executions = []
    for row in executions:
        for key in ("fire_time", "started_at", "finished_at"):
            row[key] = _moment(row[key])
    return _page("detail.html", name=name, view=view, times=times, executions=executions, sweeper=BUILT_IN_SWEEPER)


def _moment(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


@blueprint.route("/schedules/<name>/pause", methods=["POST"])
@requires("schedules:edit")
def schedules_pause(name: str) -> Response:
    return _set_paused(name, True)


@blueprint.route("/schedules/<name>/resume", methods=["POST"])
@requires("schedules:edit")
def schedules_resume(name: str) -> Response:
    return _set_paused(name, False)


def _set_paused(name: str, paused: bool) -> Response:
    with engine().db.session() as session:
        schedule = _found(session, name)
        was = schedule.paused
        set_paused(session, name, paused)
    if was != paused:
        audit("schedule.pause" if paused else "schedule.resume", "schedule", name)
    flash(_("Schedule %(name)s paused.", name=name) if paused else _("Schedule %(name)s resumed.", name=name))
    return redirect(_back(name))


def _back(name: str) -> str:
    """Back to the list when the button was there, else to the schedule's page."""
    return url_for("console.schedules") if request.form.get("back") == "list" else url_for("console.schedules_detail", name=name)


@blueprint.route("/schedules/<name>/remove", methods=["GET", "POST"])
@requires("schedules:edit")
def schedules_remove(name: str) -> Response:
    with engine().db.session() as session:
        schedule = _found(session, name)
        what = {"job": schedule.job, "communication": schedule.communication, "cron": schedule.cron,
                "every_seconds": schedule.every_seconds, "timezone": schedule.timezone}
        if request.method == "GET":
            return _page("remove.html", name=name, what=what)
        remove_schedule(session, name)
    audit("schedule.remove", "schedule", name, **{key: value for key, value in what.items() if value is not None})
    flash(_("Schedule %(name)s removed; its history stays.", name=name))
    return redirect(url_for("console.schedules"))
