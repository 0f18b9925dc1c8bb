"""``ccm scheduler``: one active scheduler, any number waiting.

Every process tries to hold the lease in ``scheduler_leases`` (a row, renewed every
``renew`` seconds, valid for ``lease`` seconds, timed by the database's clock so machines
with skewed clocks agree). The holder runs APScheduler with its SQLAlchemy job store in the
project's database; the others wait, holding no jobs, and the first to find the lease
expired (the active one died) takes over with the jobs as they are in the store. A process
that cannot renew (the database is unreachable or busy) keeps scheduling until its own
lease would have run out, then stops its scheduler; jobs already running finish, and their
executions stay theirs (each has its own lease, renewed by its process while it runs).

Schedules are data (``ccm schedules``): the active scheduler turns each into a job, and
notices added, changed, paused and removed schedules within ``renew`` seconds. Besides
them it runs the retry sweeper every ``[scheduler] sweep_seconds`` unless a
``retry-sweeper`` schedule exists; its executions are recorded as ``ccm-retry-sweeper``;
and every ``[scheduler] winner_check_seconds`` the campaigns' winner rules (a winner sent
to the rest once significant, ``ccm.feedback.send_winners_due``); and every
``[webhooks] sweep_seconds`` the outbound webhooks that are due (``ccm.outbound.deliver_due``),
and hourly deletes those done ``[webhooks] keep_days`` ago and the Typst roots unused for
``[pdf] typst_keep_days``; every ``[scheduler] sweep_seconds``
it takes up import jobs whose process died (``take_up_imports``).
It wakes APScheduler at every renewal, so a wall clock that jumps (a machine resumed from
sleep, a clock set right) delays a fire time by at most ``renew`` seconds.

Misfires: every job has ``coalesce=True`` (fire times missed while no scheduler ran are
run once, for the latest of them; the earlier ones are recorded as ``coalesced``),
``max_instances=1`` (a fire time due while the previous execution still runs is recorded
as ``skipped``) and ``misfire_grace_time`` (``[scheduler] misfire_grace_seconds``; a fire
time missed by more is recorded as ``missed`` and not run, with the ones coalesced into it).
Whatever happens, a fire time of a schedule is executed at most once
(``ccm.scheduling.jobs``); an execution a stopped scheduler left half done is performed
again, to its end, by the active one once its lease has run out.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select, update

from ccm.db import insert_or_ignore
from ccm.authoring import prune_typst_roots
from ccm.feedback import send_winners_due
from ccm.outbound import deliver_due, prune_deliveries
from ccm.wiring import Engine
from ccm.runs.periodic import set_on_signal
from ccm.scheduling.clock import database_now
from ccm.models.scheduling import Schedule, SchedulerLease
from ccm.scheduling.service import fingerprint, trigger_of
from ccm.scheduling.jobs import (execute_schedule, perform, reclaim_interrupted, record_missed, record_not_run, renew_leases,
                                 sweep_built_in, take_up_imports)

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"
JOB_PREFIX = "schedule-"
SWEEPER_JOB = "ccm-retry-sweeper"
WINNERS_JOB = "ccm-winner-rules"
WEBHOOKS_JOB = "ccm-webhook-deliveries"
HOUSEKEEPING_JOB = "ccm-housekeeping"
IMPORTS_JOB = "ccm-import-takeover"
PRUNE_SECONDS = 3600
MAX_PASSED_OVER = 10_000  # fire times coalesced into one run that are recorded one by one

_engine: Engine | None = None  # the engine of this scheduler process, for the job functions
_holder = ""
_fire = threading.local()
_NONCE = (os.getpid(), secrets.token_hex(4))

__all__ = ["activate", "database_now", "holder_id", "lease_holder", "release_lease", "serve", "take_lease"]


def holder_id() -> str:
    """This process among schedulers: ``host:pid:nonce``. The random part tells a restarted
    container (same host name, pid 1 again) from its previous life, whose executions it
    must finish."""
    global _NONCE
    if _NONCE[0] != os.getpid():  # a forked child is another scheduler
        _NONCE = (os.getpid(), secrets.token_hex(4))
    pid, nonce = _NONCE
    return f"{socket.gethostname()}:{pid}:{nonce}"


def pid_of(holder: str) -> int | None:
    """The process id in a holder id (``host:pid:nonce``; older ones were ``host:pid``)."""
    parts = holder.split(":")
    numbers = [part for part in parts[1:] if part.isdigit()]
    return int(numbers[0]) if numbers else None


# --------------------------------------------------------------------------- the lease


def take_lease(engine: Engine, holder: str, seconds: float) -> bool:
    """Hold (or keep holding) the lease; True when this process is the active scheduler."""
    with engine.db.session() as session:
        now = database_now(session)
        until = now + dt.timedelta(seconds=seconds)
        session.execute(insert_or_ignore(session, SchedulerLease, "name")
                        .values(name=LEASE_NAME, holder=holder, expires_at=until, acquired_at=now))
        mine = session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == LEASE_NAME, (SchedulerLease.holder == holder) | (SchedulerLease.expires_at < now))
            .values(holder=holder, expires_at=until)
        ).rowcount == 1
        if mine:
            session.execute(update(SchedulerLease).where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == holder,
                                                         SchedulerLease.acquired_at < now - dt.timedelta(seconds=seconds))
                            .values(acquired_at=now))
        return mine


def release_lease(engine: Engine, holder: str) -> None:
    """Let a waiting scheduler take over at once (a clean stop)."""
    with engine.db.session() as session:
        session.execute(update(SchedulerLease).where(SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == holder)
                        .values(expires_at=database_now(session) - dt.timedelta(seconds=1)))


def lease_holder(engine: Engine) -> tuple[str, dt.datetime] | None:
    with engine.db.reader() as session:
        lease = session.get(SchedulerLease, LEASE_NAME)
        return (lease.holder, lease.expires_at) if lease is not None and lease.expires_at > database_now(session) else None


# --------------------------------------------------------------------------- APScheduler


def _schedule_id(job_id: str) -> int | None:
    return int(job_id[len(JOB_PREFIX):]) if job_id.startswith(JOB_PREFIX) else None


def passed_over(job: Any, run_times: list[dt.datetime]) -> list[dt.datetime]:
    """The fire times APScheduler coalesced into ``run_times[-1]`` (it passes only that one):
    from the job's next run time, which it has not moved yet, to before the last."""
    if _schedule_id(job.id) is None or job.next_run_time is None:
        return []
    earlier, moment = [], job.next_run_time
    while moment is not None and moment < run_times[-1] and len(earlier) < MAX_PASSED_OVER:
        earlier.append(moment)
        moment = job.trigger.get_next_fire_time(moment, moment + dt.timedelta(microseconds=1))
    if len(earlier) == MAX_PASSED_OVER:
        log.warning("job %s: more than %s fire times passed over; the earliest %s are recorded", job.id, MAX_PASSED_OVER,
                    MAX_PASSED_OVER)
    return earlier


class FireTimeExecutor(ThreadPoolExecutor):
    """APScheduler's thread pool, telling the job which fire time it runs for and which
    earlier ones it stands for, and recording the fire times it does not run."""

    def start(self, scheduler: Any, alias: str) -> None:
        super().start(scheduler, alias)
        self._passed: dict[tuple[str, dt.datetime], list[dt.datetime]] = {}
        scheduler.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)

    def running(self) -> int:
        """How many jobs run now."""
        with self._lock:
            return sum(self._instances.values())

    def submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        self._passed[(job.id, run_times[-1])] = passed_over(job, run_times)
        super().submit_job(job, run_times)

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        earlier = self._passed.pop((job.id, run_times[-1]), [])

        def run(job: Any, alias: str, times: list[dt.datetime], logger_name: str) -> Any:
            _fire.time, _fire.passed_over = times[-1], earlier  # coalesced: one run for the latest missed time
            try:
                events = run_job(job, alias, times, logger_name)
            finally:
                _fire.time, _fire.passed_over = None, []
            for event in events:
                if event.code == EVENT_JOB_MISSED:
                    _record_missed(job.id, [*earlier, event.scheduled_run_time])
            return events

        def callback(future: Any) -> None:
            exc = future.exception()
            if exc:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(run, job, job._jobstore_alias, run_times, self._logger.name).add_done_callback(callback)

    def _on_max_instances(self, event: Any) -> None:
        """A fire time due while the schedule's previous execution still runs: not run, recorded."""
        last = event.scheduled_run_times[-1]
        earlier = self._passed.pop((event.job_id, last), [])
        schedule_id = _schedule_id(event.job_id)
        if _engine is not None and schedule_id is not None:
            record_not_run(_engine, schedule_id, [_as_fire_time(t) for t in (*earlier, *event.scheduled_run_times)], _holder,
                           "skipped", "the execution of an earlier fire time was still running (max_instances=1)")


def _record_missed(job_id: str, fire_times: list[dt.datetime]) -> None:
    """Fire times missed by more than the grace time: recorded in the schedule's history."""
    schedule_id = _schedule_id(job_id)
    if _engine is not None and schedule_id is not None:
        log.warning("schedule %s: the run due at %s was missed (no scheduler within the grace time)", schedule_id, fire_times[-1])
        record_missed(_engine, schedule_id, [_as_fire_time(t) for t in fire_times], _holder)


def _as_fire_time(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def run_schedule(schedule_id: int) -> None:
    """The job APScheduler stores for every schedule (a reference by name, an id as argument)."""
    fire = getattr(_fire, "time", None) or dt.datetime.now(dt.timezone.utc)
    earlier = getattr(_fire, "passed_over", None) or []
    assert _engine is not None, "run_schedule runs inside `ccm scheduler`"
    execute_schedule(_engine, schedule_id, _as_fire_time(fire), _holder, [_as_fire_time(t) for t in earlier])


def perform_again(execution_id: int) -> None:
    """A one-off job: finish an execution a stopped scheduler left half done."""
    assert _engine is not None
    perform(_engine, execution_id, _holder)


def sweep() -> None:
    """The built-in retry sweeper, recorded as ``ccm-retry-sweeper``."""
    assert _engine is not None
    fire = getattr(_fire, "time", None) or dt.datetime.now(dt.timezone.utc)
    done = sweep_built_in(_engine, _as_fire_time(fire), _holder)
    if done is not None and done.summary != "nothing due":
        log.info("retry sweeper: %s", done.summary or done.error)


def judge_winners() -> None:
    """The campaigns' winner rules, judged now (``ccm.feedback.send_winners_due``)."""
    assert _engine is not None
    for campaign, outcome in send_winners_due(_engine).items():
        if outcome.startswith("sent"):
            log.warning("campaign %s: %s", campaign, outcome)


def deliver_webhooks() -> None:
    """The outbound webhooks due now, one attempt each (``ccm.outbound.deliver_due``)."""
    assert _engine is not None
    done = deliver_due(_engine)
    if done.delivered or done.retrying or done.dead:
        log.info("webhook deliveries: %s", done.summary)


def take_up_import_jobs() -> None:
    """Import jobs whose process died, imported again here (``ccm.scheduling.jobs.take_up_imports``)."""
    assert _engine is not None
    take_up_imports(_engine, _holder)


def housekeeping() -> None:
    """Hourly: the webhook deliveries done more than ``[webhooks] keep_days`` ago, and the
    Typst roots unused for ``[pdf] typst_keep_days``, deleted."""
    assert _engine is not None
    prune_deliveries(_engine)
    pruned = prune_typst_roots(_engine.settings)
    if pruned:
        log.info("housekeeping: %s Typst roots unused for %s days deleted", pruned, _engine.settings["pdf"]["typst_keep_days"])


def make_scheduler(engine: Engine) -> BackgroundScheduler:
    grace = engine.settings["scheduler"]["misfire_grace_seconds"]
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine.db.engine, tablename="apscheduler_jobs"),
                   "memory": MemoryJobStore()},  # one-off jobs, derived again from the database by each active scheduler
        executors={"default": FireTimeExecutor(max_workers=engine.settings["scheduler"]["threads"])},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        timezone=dt.timezone.utc,
    )


def sync_jobs(engine: Engine, scheduler: BackgroundScheduler) -> None:
    """Make the scheduler's jobs match the schedules: add, rebuild changed, pause, remove;
    the built-in retry sweeper unless a schedule does that job, the winner rules, the
    webhook deliveries, the hourly housekeeping and the take-up of interrupted imports."""
    with engine.db.reader() as session:
        schedules = list(session.scalars(select(Schedule)))
    wanted = {f"{JOB_PREFIX}{s.id}": s for s in schedules}
    for job in scheduler.get_jobs(jobstore="default"):
        if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
            scheduler.remove_job(job.id)
    for job_id, schedule in wanted.items():
        job = scheduler.get_job(job_id)
        if job is None or job.name != fingerprint(schedule):
            # A new or changed schedule: its next fire time counts from now. An unchanged one
            # keeps the next fire time in the store, so a run missed while down still happens.
            scheduler.add_job(run_schedule, trigger_of(schedule), args=[schedule.id], id=job_id,
                              name=fingerprint(schedule), replace_existing=True)
            job = scheduler.get_job(job_id)
        if schedule.paused and job.next_run_time is not None:
            scheduler.pause_job(job_id)
        elif not schedule.paused and job.next_run_time is None:
            scheduler.resume_job(job_id)
    own_sweeper = any(s.job == "retry-sweeper" and not s.paused for s in schedules)
    if own_sweeper and scheduler.get_job(SWEEPER_JOB) is not None:
        scheduler.remove_job(SWEEPER_JOB)
    elif not own_sweeper and scheduler.get_job(SWEEPER_JOB) is None:
        scheduler.add_job(sweep, IntervalTrigger(seconds=engine.settings["scheduler"]["sweep_seconds"]), id=SWEEPER_JOB,
                          name="retry sweeper", replace_existing=True, misfire_grace_time=None)
    if scheduler.get_job(WINNERS_JOB) is None:
        scheduler.add_job(judge_winners, IntervalTrigger(seconds=engine.settings["scheduler"]["winner_check_seconds"]),
                          id=WINNERS_JOB, name="winner rules", replace_existing=True, misfire_grace_time=None)
    if scheduler.get_job(WEBHOOKS_JOB) is None:
        scheduler.add_job(deliver_webhooks, IntervalTrigger(seconds=engine.settings["webhooks"]["sweep_seconds"]),
                          id=WEBHOOKS_JOB, name="webhook deliveries", replace_existing=True, misfire_grace_time=None)
    if scheduler.get_job(IMPORTS_JOB) is None:
        scheduler.add_job(take_up_import_jobs, IntervalTrigger(seconds=engine.settings["scheduler"]["sweep_seconds"]), id=IMPORTS_JOB,
                          name="interrupted imports", replace_existing=True, misfire_grace_time=None)
    if scheduler.get_job(HOUSEKEEPING_JOB) is None:
        scheduler.add_job(housekeeping, IntervalTrigger(seconds=PRUNE_SECONDS), id=HOUSEKEEPING_JOB, name="housekeeping",
                          replace_existing=True, misfire_grace_time=None)


def finish_interrupted(engine: Engine, scheduler: BackgroundScheduler) -> None:
    """Take over the executions whose scheduler stopped renewing them, to perform them again."""
    for execution_id in reclaim_interrupted(engine, _holder):
        log.warning("scheduler %s: finishing execution %s, which a stopped scheduler left half done", _holder, execution_id)
        scheduler.add_job(perform_again, args=[execution_id], id=f"again-{execution_id}", jobstore="memory",
                          replace_existing=True, misfire_grace_time=None)


def activate(engine: Engine, holder: str) -> BackgroundScheduler:
    """Start scheduling as ``holder`` (which holds the lease): the jobs as they are in the
    store, brought in line with the schedules, and the executions to finish."""
    global _engine, _holder
    _engine, _holder = engine, holder
    log.warning("scheduler %s: active", holder)
    scheduler = make_scheduler(engine)
    scheduler.start(paused=True)
    sync_jobs(engine, scheduler)
    finish_interrupted(engine, scheduler)
    scheduler.resume()
    return scheduler


def _keep_going(engine: Engine, scheduler: BackgroundScheduler) -> None:
    """One renewal of the active scheduler: the schedules re-read, interrupted executions
    taken over, and APScheduler woken (it may have slept through a jump of the clock)."""
    sync_jobs(engine, scheduler)
    finish_interrupted(engine, scheduler)
    scheduler.wakeup()


def serve(engine: Engine, *, once: threading.Event | None = None, stop: threading.Event | None = None) -> None:
    """Wait for the lease, schedule while holding it; until SIGTERM/SIGINT or ``stop``."""
    holder = holder_id()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        set_on_signal(stop)
    config = engine.settings["scheduler"]
    scheduler: BackgroundScheduler | None = None
    held_until = 0.0  # by this process's own clock: when its lease runs out unless renewed
    try:
        while not stop.is_set():
            try:
                renew_leases(engine, holder)  # the executions this process performs, active or not
                active = take_lease(engine, holder, config["lease_seconds"])
                if active:
                    held_until = time.monotonic() + config["lease_seconds"] - config["renew_seconds"]
            except Exception as exc:  # the database is busy or away: go on as we are until the lease would end
                log.error("scheduler %s: cannot renew the lease (%s); retrying", holder, type(exc).__name__)
                active = scheduler is not None and time.monotonic() < held_until
            try:
                if active and scheduler is None:
                    scheduler = activate(engine, holder)
                elif active:
                    _keep_going(engine, scheduler)
                elif scheduler is not None:
                    log.error("scheduler %s: lost the lease; stopping its schedules (running jobs finish)", holder)
                    scheduler.shutdown(wait=False)
                    scheduler = None
            except Exception as exc:
                log.error("scheduler %s: cannot read the schedules (%s); retrying", holder, type(exc).__name__)
            if once is not None:
                once.set()
            stop.wait(config["renew_seconds"])
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # jobs running now finish first; then a waiting scheduler takes over at once
            release_lease(engine, holder)
            log.warning("scheduler %s: stopped", holder)
