"""The dashboard: runs in progress, runs needing attention, the next schedules and the
follow-up tasks waiting, each linking to its desk (only the parts the user may see)."""
from __future__ import annotations

import datetime as dt

from flask import render_template

from ccm.runs import list_runs
from ccm.scheduling import list_schedules
from ccm.web.console import SIGNED_IN, blueprint, engine, requires, staff

IN_PROGRESS = ("planned", "running")
ATTENTION = ("waiting", "paused", "interrupted", "failed", "undelivered")


@blueprint.route("/")
@requires(SIGNED_IN)
def dashboard() -> str:
    me = staff()
    runs = attention = schedules = None
    tasks = None
    with engine().db.reader() as session:
        if me.can("runs:view"):
            listed = [(run, name, state) for run, name, state in list_runs(session, engine().settings)[:200]]
            runs = [row for row in listed if row[2] in IN_PROGRESS]
            attention = [row for row in listed if row[2] in ATTENTION]
        if me.can("schedules:view"):
            upcoming = [view for view in list_schedules(session) if view.next_fire]
            schedules = sorted(upcoming, key=lambda view: view.next_fire or "")[:8]
    if me.can("tasks:view"):
        from ccm.feedback import task_counts

        tasks = task_counts(engine())
    return render_template("console/dashboard.html", runs=runs, attention=attention, schedules=schedules, tasks=tasks,
                           fire_time=_fire_time)


def _fire_time(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)
