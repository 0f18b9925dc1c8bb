"""The history of schedules: executions held by leases (a live holder keeps its execution,
a dead one's is taken over and its outcome is not written twice), fire times not run
(coalesced, skipped) recorded, the history kept when a schedule is removed, and the
built-in retry sweeper recorded under its own name."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest
from sqlalchemy import delete, func, select, update

from ccm.scheduling import jobs
from ccm.scheduling.jobs import execute_schedule, perform, reclaim_interrupted, renew_leases, sweep_built_in
from ccm.models.scheduling import BUILT_IN_SWEEPER, ScheduleRun
from ccm.scheduling.service import ScheduleError, add_schedule, history

FIRE = dt.datetime(2026, 12, 2, 9)


def _add(engine, name, job, **kwargs):
    with engine.db.session() as session:
        return add_schedule(session, name, job, **kwargs).id


def _execution(engine, execution_id) -> ScheduleRun:
    with engine.db.session() as session:
        row = session.get(ScheduleRun, execution_id)
        session.expunge(row)
        return row


def _expire(engine, execution_id) -> None:
    """As if its holder had stopped renewing the lease a while ago."""
    with engine.db.session() as session:
        session.execute(update(ScheduleRun).where(ScheduleRun.id == execution_id).values(lease_until=dt.datetime(2000, 1, 1)))


def test_a_running_execution_is_left_to_its_live_holder_and_taken_over_once_its_lease_runs_out(campaign_engine, monkeypatch):
    engine = campaign_engine
    schedule = _add(engine, "deals-weekly", "campaign", communication="deals", cron="0 9 * * 3")
    seen: dict = {}
    real_campaign = jobs.JOBS["campaign"]

    def campaign_while_others_look(engine, schedule, fire_time):
        (execution_id,) = [e.id for e in _all(engine) if e.state == "running"]
        seen["live"] = reclaim_interrupted(engine, "other:2:bb")  # its holder renews it: not taken
        _expire(engine, execution_id)
        assert renew_leases(engine, "first:1:aa") == 1  # the holder's process renews what it performs
        seen["renewed"] = _execution(engine, execution_id).lease_until > dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=20)
        _expire(engine, execution_id)  # now the holder froze long enough: another scheduler takes it over
        seen["taken"] = reclaim_interrupted(engine, "other:2:bb")
        assert renew_leases(engine, "first:1:aa") == 0  # no longer its own
        return real_campaign(engine, schedule, fire_time)

    monkeypatch.setitem(jobs.JOBS, "campaign", campaign_while_others_look)
    first = execute_schedule(engine, schedule, FIRE, "first:1:aa")
    assert seen["live"] == [] and seen["renewed"] and seen["taken"] == [first.id]
    # The frozen holder finished its job, but the outcome is not its to write: still the taker's to perform.
    assert first.state == "running" and first.holder == "other:2:bb" and first.run_ids == []
    monkeypatch.setitem(jobs.JOBS, "campaign", real_campaign)
    again = perform(engine, first.id, "other:2:bb")
    assert again.state == "completed" and again.run_ids  # planning is idempotent: the same run, its messages once
    with engine.db.session() as session:
        from ccm.models import Message, Run

        assert session.query(Run).count() == 1
        states = dict(session.query(Message.state, func.count()).group_by(Message.state).all())
        assert states.get("sent") and not states.get("pending") and not states.get("claimed"), states
        # One message per customer and channel: the taker's perform sent nothing the holder had sent.
        per_key = session.query(Message.customer_id, Message.channel, func.count()).group_by(Message.customer_id, Message.channel)
        assert {n for *_, n in per_key} == {1}


def _all(engine) -> list[ScheduleRun]:
    with engine.db.session() as session:
        rows = list(session.scalars(select(ScheduleRun).order_by(ScheduleRun.fire_time, ScheduleRun.id)))
        session.expunge_all()
        return rows


def test_the_history_stays_when_a_schedule_is_removed(campaign_engine):
    from app import create_app

    engine = campaign_engine
    runner = create_app(engine.settings).test_cli_runner()
    schedule = _add(engine, "deals-weekly", "campaign", communication="deals", cron="0 9 * * 3")
    done = execute_schedule(engine, schedule, FIRE, "first:1:aa")
    with engine.db.session() as session:  # and one a scheduler left half done
        session.add(ScheduleRun(schedule_id=schedule, schedule_name="deals-weekly", fire_time=FIRE + dt.timedelta(days=7),
                                state="running", holder="gone:9:ff", lease_until=dt.datetime(2000, 1, 1), run_ids=[]))
    assert runner.invoke(args=["schedules", "remove", "deals-weekly"]).exit_code == 0

    # The half-done one cannot be performed again (what would it run?): closed, saying why.
    assert reclaim_interrupted(engine, "next:2:bb") == []
    text = runner.invoke(args=["schedules", "history", "deals-weekly"])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == "deals-weekly was removed; its executions:"
    assert "failed    interrupted: the scheduler running it (gone:9:ff) stopped" in lines[1]
    assert lines[2].startswith("due 2026-12-02T09:00:00Z") and "completed" in lines[2] and f"run {done.run_id}" in lines[2]
    rows = json.loads(runner.invoke(args=["schedules", "history", "deals-weekly", "--json"]).output)
    assert [(r["state"], r["run_ids"], r["removed"]) for r in rows] == [("failed", [], True), ("completed", [done.run_id], True)]
    unknown = runner.invoke(args=["schedules", "history", "deals-monthly"])
    assert unknown.exit_code == 1 and "deals-monthly" in unknown.output

    # Added again under the same name: a new schedule, whose fire times are its own.
    again = _add(engine, "deals-weekly", "campaign", communication="deals", cron="0 9 * * 3")
    assert execute_schedule(engine, again, FIRE, "first:1:aa") is not None
    with engine.db.session() as session:
        assert len(history(session, "deals-weekly")) == 3


def test_fire_times_passed_over_are_recorded_as_coalesced_with_the_one_that_ran(campaign_engine):
    engine = campaign_engine
    schedule = _add(engine, "refresh", "segments-refresh", cron="0 * * * *")
    missed = [FIRE - dt.timedelta(hours=2), FIRE - dt.timedelta(hours=1)]
    done = execute_schedule(engine, schedule, FIRE, "first:1:aa", passed_over=missed)
    assert done.state == "completed"
    rows = [(e.fire_time, e.state, e.error) for e in _all(engine)]
    why = "not run on its own: run once with 2026-12-02 09:00:00Z"
    assert rows == [(missed[0], "coalesced", why), (missed[1], "coalesced", why), (FIRE, "completed", None)]
    # The same times again (a second scheduler's view of the same gap): nothing doubled.
    assert execute_schedule(engine, schedule, FIRE, "other:2:bb", passed_over=missed) is None
    assert len(_all(engine)) == 3


def test_apscheduler_coalesced_fire_times_are_the_triggers_times_between(campaign_engine):
    """What ``passed_over`` reads from a real APScheduler job: the cron trigger's times from
    the job's next run time up to the one that runs, in the schedule's zone."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from ccm.scheduling.process import passed_over
    from ccm.scheduling.service import trigger_of

    engine = campaign_engine
    schedule_id = _add(engine, "hourly", "segments-refresh", cron="30 * * * *", timezone="Europe/Berlin")
    with engine.db.session() as session:
        from ccm.models.scheduling import Schedule

        trigger = trigger_of(session.get(Schedule, schedule_id))
    scheduler = BackgroundScheduler(timezone=dt.timezone.utc)
    scheduler.start(paused=True)
    try:
        start = dt.datetime(2026, 12, 2, 5, 30, tzinfo=dt.timezone.utc)
        job = scheduler.add_job(print, trigger, id=f"schedule-{schedule_id}", next_run_time=start)
        latest = start + dt.timedelta(hours=3)
        earlier = passed_over(scheduler.get_job(job.id), [start, latest])
        assert [t.astimezone(dt.timezone.utc).hour for t in earlier] == [5, 6, 7]
        other = scheduler.add_job(print, trigger, id="ccm-retry-sweeper", next_run_time=start)
        assert passed_over(scheduler.get_job(other.id), [start, latest]) == []  # not a schedule: nothing to record
    finally:
        scheduler.shutdown(wait=False)


def test_a_fire_time_due_while_the_previous_execution_runs_is_recorded_as_skipped(campaign_engine):
    """A real BackgroundScheduler with the scheduler's executor: a job that runs for longer
    than its interval, so APScheduler refuses the next fire time (max_instances=1)."""
    from apscheduler.triggers.interval import IntervalTrigger

    from ccm.scheduling import process

    engine = campaign_engine
    schedule_id = _add(engine, "slow", "segments-refresh", every_seconds=1)
    release = threading.Event()
    scheduler = process.make_scheduler(engine)
    process._engine, process._holder = engine, "first:1:aa"
    scheduler.start()
    try:
        scheduler.add_job(release.wait, IntervalTrigger(seconds=1), args=[10], id=f"schedule-{schedule_id}", jobstore="memory")
        deadline = time.monotonic() + 10
        while not any(e.state == "skipped" for e in _all(engine)):
            assert time.monotonic() < deadline, "no fire time was recorded as skipped"
            time.sleep(0.1)
    finally:
        release.set()
        scheduler.shutdown(wait=True)
        process._engine, process._holder = None, ""
    skipped = [e for e in _all(engine) if e.state == "skipped"]
    assert {e.schedule_name for e in skipped} == {"slow"} and {e.holder for e in skipped} == {"first:1:aa"}
    assert skipped[0].error == "the execution of an earlier fire time was still running (max_instances=1)"
    assert skipped[0].fire_time.microsecond == 0 and skipped[0].finished_at is not None


def test_the_built_in_sweeper_is_recorded_under_its_own_name(campaign_engine):
    engine = campaign_engine
    done = sweep_built_in(engine, FIRE, "first:1:aa")
    assert done.state == "completed" and done.summary == "nothing due" and done.schedule_id is None
    week_later = sweep_built_in(engine, FIRE + dt.timedelta(days=7), "first:1:aa")
    assert [e.id for e in _all(engine)] == [done.id, week_later.id]
    third = sweep_built_in(engine, FIRE + dt.timedelta(days=7, minutes=1), "first:1:aa")  # idle sweeps are kept for a week
    assert [e.id for e in _all(engine)] == [week_later.id, third.id]
    with engine.db.session() as session:
        session.execute(delete(ScheduleRun).where(ScheduleRun.id != third.id))
    with engine.db.session() as session:
        (row,) = history(session, BUILT_IN_SWEEPER)
    assert row["state"] == "completed" and not row["removed"]
    with pytest.raises(ScheduleError, match="the built-in retry sweeper's name"):
        _add(engine, BUILT_IN_SWEEPER, "retry-sweeper", every_seconds=60)
    # A sweep its scheduler did not finish is not performed again (the next sweep does its work): closed.
    with engine.db.session() as session:
        session.add(ScheduleRun(schedule_id=None, schedule_name=BUILT_IN_SWEEPER, fire_time=FIRE + dt.timedelta(days=8),
                                state="running", holder="gone:9:ff", lease_until=dt.datetime(2000, 1, 1), run_ids=[]))
    assert reclaim_interrupted(engine, "next:2:bb") == []
    assert [e.state for e in _all(engine)] == ["completed", "failed"]
