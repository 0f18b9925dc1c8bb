"""What a schedule does when it fires, recorded once per fire time.

``execute_schedule`` first inserts the execution (unique per schedule and fire time): a fire
time that was executed already, by this scheduler or by one that died after starting it, is
skipped, so no schedule ever runs twice for one time, whatever the scheduler processes do.
Then the job: a campaign run, a statement cycle, the date reminders, the segment refresh or
the retry sweeper; the execution records when it ran, every run it made, and any error.
Fire times that were not run are recorded too: ``missed`` (later than the misfire grace),
``coalesced`` (passed over while no scheduler ran, covered by the one run for the latest)
and ``skipped`` (due while the previous execution still ran).

An execution is held by the scheduler performing it, with a lease the holder renews while
it lives (``renew_leases``). Only one whose lease ran out (its holder died, or froze) is
performed again by another scheduler (``reclaim_interrupted``), and an outcome is written
only by the execution's current holder: a scheduler that lost its lease while a job ran
finishes that job, and nobody else starts the same execution meanwhile. Should a frozen
holder wake up after being replaced, the messages still go out once: each is claimed in
the outbox before it is sent.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Callable, Iterable

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from ccm.db import dialect_insert
from ccm.wiring import Engine
from ccm.imports.jobs import claim_job, run_job
from ccm.models import Message, Run, utcnow
from ccm.models.imports import ImportJob
from ccm.runs import execute, hold_until_local_time, observed_state, plan_reminders, plan_run, report
from ccm.runs.outbox import process_alive
from ccm.scheduling.clock import database_now
from ccm.models.scheduling import BUILT_IN_SWEEPER, Schedule, ScheduleRun
from ccm.scheduling.timing import billing_period, cycle_label
from ccm.segments import refresh

log = logging.getLogger(__name__)

_performing: set[int] = set()  # executions this process performs now (their leases are renewed)
_performing_lock = threading.Lock()


def _insert(engine: Engine):  # type: ignore[no-untyped-def]
    return dialect_insert(engine.db)


def _lease(engine: Engine, now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=engine.settings["scheduler"]["lease_seconds"])


def execute_schedule(engine: Engine, schedule_id: int, fire_time: dt.datetime, holder: str,
                     passed_over: Iterable[dt.datetime] = ()) -> ScheduleRun | None:
    """Run the schedule for ``fire_time`` (naive UTC) unless that was done; returns the record.
    ``passed_over``: earlier fire times APScheduler coalesced into this one, recorded as such."""
    with engine.db.session() as session:
        schedule = session.get(Schedule, schedule_id)
        if schedule is None or schedule.paused:
            return None
        execution_id = session.execute(
            _insert(engine)(ScheduleRun).values(
                schedule_id=schedule_id, schedule_name=schedule.name, fire_time=fire_time, started_at=utcnow(), state="running",
                holder=holder, lease_until=_lease(engine, database_now(session)), run_ids=[])
            .on_conflict_do_nothing(index_elements=["schedule_id", "fire_time"]).returning(ScheduleRun.id)
        ).scalar()
        _record(engine, session, schedule, passed_over, holder, "coalesced", f"not run on its own: run once with {fire_time}Z")
    if execution_id is None:
        log.info("schedule %s: %s ran already; skipped", schedule_id, fire_time)
        return None
    return perform(engine, execution_id, holder)


def perform(engine: Engine, execution_id: int, holder: str | None = None) -> ScheduleRun | None:
    """Do what the execution stands for and record the outcome. Every job is safe to run
    again for the same fire time (planning is idempotent), which is how an execution that a
    stopped scheduler left half done is finished by the next one (``reclaim_interrupted``).
    With ``holder``, only an execution that scheduler holds (another one may have taken it)."""
    with engine.db.session() as session:
        execution = session.get(ScheduleRun, execution_id)
        if execution is None or execution.state != "running" or (holder is not None and execution.holder != holder):
            return None
        holder = execution.holder
        schedule = _schedule_of(session, execution)
        fire_time = execution.fire_time
    if schedule is None:
        return _finish(engine, execution_id, holder, {"state": "failed", "error": "its schedule was removed before it ran to its end"})
    log.info("schedule %s: running %s for %s", schedule.name, schedule.job, fire_time)
    with _performing_lock:
        _performing.add(execution_id)
    try:
        run_ids, summary = JOBS[schedule.job](engine, schedule, fire_time)
        values = {"state": "completed", "run_ids": run_ids, "run_id": run_ids[-1] if run_ids else None, "summary": summary, "error": None}
    except Exception as exc:  # recorded and logged; the scheduler goes on with the next fire time
        log.error("schedule %s: %s failed: %s", schedule.name, schedule.job, type(exc).__name__)
        values = {"state": "failed", "error": safe_error(exc)}
    finally:
        with _performing_lock:
            _performing.discard(execution_id)
    return _finish(engine, execution_id, holder, values)


def _schedule_of(session: Session, execution: ScheduleRun) -> Schedule | None:
    if execution.schedule_id is None:  # the built-in sweeper, or a schedule removed since
        if execution.schedule_name != BUILT_IN_SWEEPER:
            return None
        return Schedule(id=None, name=BUILT_IN_SWEEPER, job="retry-sweeper", timezone="UTC", options={})
    schedule = session.get(Schedule, execution.schedule_id)
    session.expunge(schedule)
    return schedule


def _finish(engine: Engine, execution_id: int, holder: str, values: dict) -> ScheduleRun:
    """Write the outcome, if ``holder`` still holds the execution; the record as it stands."""
    with engine.db.session() as session:
        written = session.execute(
            update(ScheduleRun).where(ScheduleRun.id == execution_id, ScheduleRun.holder == holder, ScheduleRun.state == "running")
            .values(**values, finished_at=utcnow(), lease_until=None)
        ).rowcount
        execution = session.get(ScheduleRun, execution_id)
        if not written:
            log.warning("execution %s: taken over by %s while %s ran it; its outcome stands", execution_id, execution.holder, holder)
        session.flush()
        session.expunge(execution)
    return execution


def safe_error(exc: Exception) -> str:
    """One line for the record, without personal data: a database error's own message
    without the SQL and its parameters (which may hold account numbers or external ids)."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError):
        first = (str(exc.orig).strip().splitlines() or [""])[0]
        return f"{type(exc.orig).__name__}: {first}"[:500]
    return f"{type(exc).__name__}: {exc}"[:1000]


# --------------------------------------------------------------------------- holding executions


def renew_leases(engine: Engine, holder: str) -> int:
    """Keep holding the executions this process is performing; how many."""
    with _performing_lock:
        ids = sorted(_performing)
    if not ids:
        return 0
    with engine.db.session() as session:
        return session.execute(
            update(ScheduleRun).where(ScheduleRun.id.in_(ids), ScheduleRun.holder == holder, ScheduleRun.state == "running")
            .values(lease_until=_lease(engine, database_now(session)))
        ).rowcount


def reclaim_interrupted(engine: Engine, holder: str) -> list[int]:
    """Executions left ``running`` by a scheduler that stopped renewing their lease (it died
    or froze): taken over by ``holder`` to be performed again. One whose holder still lives
    (it lost the scheduler lease but finishes its job) is left to it. One that cannot be
    performed again (its schedule was removed; a built-in sweep, which the next one redoes)
    is closed as failed."""
    with engine.db.session() as session:
        now = database_now(session)
        stale = and_(ScheduleRun.state == "running", ScheduleRun.holder != holder,
                     or_(ScheduleRun.lease_until.is_(None), ScheduleRun.lease_until < now))
        taken = []
        for execution in list(session.scalars(select(ScheduleRun).where(stale))):
            again = execution.schedule_id is not None
            values = {"holder": holder, "started_at": utcnow(), "lease_until": _lease(engine, now)} if again else {
                "state": "failed", "finished_at": utcnow(), "lease_until": None,
                "error": f"interrupted: the scheduler running it ({execution.holder}) stopped"}
            if session.execute(update(ScheduleRun).where(ScheduleRun.id == execution.id, stale).values(**values)).rowcount and again:
                taken.append(execution.id)
    return taken


# --------------------------------------------------------------------------- fire times not run


def record_not_run(engine: Engine, schedule_id: int, fire_times: Iterable[dt.datetime], holder: str, state: str, why: str) -> None:
    """Fire times of a schedule that were not run (``missed``, ``coalesced``, ``skipped``)."""
    with engine.db.session() as session:
        schedule = session.get(Schedule, schedule_id)
        if schedule is not None:
            _record(engine, session, schedule, fire_times, holder, state, why)


def record_missed(engine: Engine, schedule_id: int, fire_times: Iterable[dt.datetime], holder: str) -> None:
    """Fire times missed by more than the grace time (no scheduler ran): recorded, not run."""
    record_not_run(engine, schedule_id, fire_times, holder, "missed",
                   "no scheduler was running within [scheduler] misfire_grace_seconds of this time")


def _record(engine: Engine, session: Session, schedule: Schedule, fire_times: Iterable[dt.datetime], holder: str, state: str,
            why: str) -> None:
    now = utcnow()
    rows = [{"schedule_id": schedule.id, "schedule_name": schedule.name, "fire_time": moment, "started_at": now, "finished_at": now,
             "state": state, "holder": holder, "error": why, "run_ids": []} for moment in sorted(set(fire_times))]
    for start in range(0, len(rows), 500):
        session.execute(_insert(engine)(ScheduleRun).values(rows[start:start + 500])
                        .on_conflict_do_nothing(index_elements=["schedule_id", "fire_time"]))


# --------------------------------------------------------------------------- the built-in sweeper


IDLE_SWEEPS_KEPT = dt.timedelta(days=7)


def sweep_built_in(engine: Engine, fire_time: dt.datetime, holder: str) -> ScheduleRun | None:
    """The active scheduler's own retry sweeper, recorded under ``ccm-retry-sweeper``. It
    runs every minute, so its idle executions ("nothing due") are kept for a week only;
    the ones that resumed runs or failed stay."""
    with engine.db.session() as session:
        session.execute(delete(ScheduleRun).where(
            ScheduleRun.schedule_name == BUILT_IN_SWEEPER, ScheduleRun.schedule_id.is_(None), ScheduleRun.state == "completed",
            ScheduleRun.summary == "nothing due", ScheduleRun.fire_time < fire_time - IDLE_SWEEPS_KEPT))
        execution = ScheduleRun(schedule_id=None, schedule_name=BUILT_IN_SWEEPER, fire_time=fire_time, started_at=utcnow(),
                                state="running", holder=holder, lease_until=_lease(engine, database_now(session)), run_ids=[])
        session.add(execution)
        session.flush()
        execution_id = execution.id
    return perform(engine, execution_id, holder)


# --------------------------------------------------------------------------- the jobs


def _deliver(engine: Engine, run_id: int) -> str:

    state = execute(engine, run_id, progress=False)
    done = report(engine, run_id)
    sent = sum(states.get("sent", 0) for states in done.by_channel.values())
    waiting = sum(states.get("deferred", 0) for states in done.by_channel.values())
    return f"run {run_id} {state}: {done.records_in} in, {sent} sent" + (f", {waiting} waiting for their time" if waiting else "")


def campaign(engine: Engine, schedule: Schedule, fire_time: dt.datetime) -> tuple[list[int], str]:

    cycle = cycle_label(fire_time, schedule.timezone, seconds=schedule.every_seconds is not None)
    plan = plan_run(engine, schedule.communication, cycle, audience=(schedule.options or {}).get("audience"))
    local = (schedule.options or {}).get("local_time")
    if local:
        with engine.db.session() as session:
            hold_until_local_time(session, plan.run_id, local)
    return [plan.run_id], _deliver(engine, plan.run_id)


def statement(engine: Engine, schedule: Schedule, fire_time: dt.datetime) -> tuple[list[int], str]:

    period = billing_period(fire_time, schedule.timezone, (schedule.options or {}).get("period", "previous"))
    plan = plan_run(engine, schedule.communication, period, audience=(schedule.options or {}).get("audience"))
    return [plan.run_id], _deliver(engine, plan.run_id)


def reminders(engine: Engine, schedule: Schedule, fire_time: dt.datetime) -> tuple[list[int], str]:
    """The reminders due on the fire date, and those of days no execution covered since the
    last completed one (a scheduler down for a day, or fire times coalesced): each date once."""

    with engine.db.reader() as session:
        last = session.scalar(select(func.max(ScheduleRun.fire_time)).where(
            ScheduleRun.schedule_id == schedule.id, ScheduleRun.state == "completed", ScheduleRun.fire_time < fire_time))
    plans = plan_reminders(engine, schedule.communication, fire_time, schedule.timezone, since=last)
    if not plans:
        return [], "nobody's date is due"
    return [plan.run_id for plan in plans], "; ".join(_deliver(engine, plan.run_id) for plan in plans)


def segments_refresh(engine: Engine, schedule: Schedule, fire_time: dt.datetime) -> tuple[list[int], str]:
    with engine.db.session() as session:
        result = refresh(session, engine.settings)
    segments = "".join(f"; {name}: {count}" for name, count in result.counts.items())
    return [], f"computed fields of {result.computed.customers} customers{segments}"


def retry_sweeper(engine: Engine, schedule: Schedule | None, fire_time: dt.datetime) -> tuple[list[int], str]:
    """Deliver what is due in runs that wait: failed messages whose backoff has passed,
    deferred messages whose time came (quiet hours, local-time releases, daily limits), and
    messages of triggered runs that no web process delivered. Runs a person paused are
    left alone, and so are runs being planned or delivered (``planned``, ``running``)."""

    now = utcnow()
    max_attempts = engine.settings["ccm"]["max_attempts"]
    due = or_(
        and_(Message.state == "failed", Message.next_attempt_at <= now, Message.attempts < max_attempts),
        and_(Message.state == "deferred", Message.next_attempt_at <= now),
        and_(Message.state == "pending", Message.created_at <= now - dt.timedelta(seconds=60)),
    )
    with engine.db.reader() as session:
        candidates = set(session.scalars(select(Message.run_id).where(due).distinct()))
        # runs left running by a process that died (their messages may all be claimed)
        candidates |= set(session.scalars(select(Run.id).where(Run.state == "running", Run.owner.is_not(None))))
        runs = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(candidates)))}
    resumed = []
    for run_id in sorted(runs):
        run = runs[run_id]
        state = observed_state(run, engine.settings)
        waiting = state in ("waiting", "interrupted")  # only deferred or retrying messages are left, or its process died
        triggered = bool((run.options or {}).get("triggered")) and run.state in ("running", "completed", "undelivered") and run.owner is None
        if not (waiting or triggered):  # paused by a person, cancelled, failed, or being planned or run right now
            continue
        execute(engine, run_id, progress=False)
        resumed.append(run_id)
    return resumed, f"resumed runs {', '.join(map(str, resumed))}" if resumed else "nothing due"


JOBS: dict[str, Callable[[Engine, Schedule, dt.datetime], tuple[list[int], str]]] = {
    "campaign": campaign,
    "statement": statement,
    "reminders": reminders,
    "segments-refresh": segments_refresh,
    "retry-sweeper": retry_sweeper,
}


QUEUED_GRACE = dt.timedelta(minutes=2)  # a queued job is started by the request that made it; older ones were left behind


def take_up_imports(engine: Engine, holder: str) -> list[int]:
    """Import jobs whose process died, taken up and imported again here, one after another
    (an upsert: what the first try wrote stays as it is): those left running by a process
    known to be dead (on this machine), and those queued by a request that never started
    them. Returns the jobs done."""
    with engine.db.reader() as session:
        found = session.execute(select(ImportJob.id, ImportJob.state, ImportJob.owner, ImportJob.created_at)
                                .where(ImportJob.state.in_(("queued", "running"))).order_by(ImportJob.id)).all()
    done = []
    for job_id, state, owner, created_at in found:
        left = process_alive(owner) is False if state == "running" else created_at < utcnow() - QUEUED_GRACE
        if left and claim_job(engine.db, job_id, state, owner, holder):
            log.warning("import job %s: taken up (its process %s)", job_id, "died" if state == "running" else "never started it")
            run_job(engine.db, engine.var_dir, job_id, owner=holder)
            done.append(job_id)
    return done
