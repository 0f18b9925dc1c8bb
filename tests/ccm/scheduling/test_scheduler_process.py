"""Real `ccm scheduler` processes on one database: two started, one active, the other standing
by; the campaign runs once per fire time. The active one killed with SIGKILL: the other takes
over, runs the fire time it missed once, and goes on. A scheduler killed and restarted: the
fire time due while it was down runs once on restart; nothing runs twice."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from ccm.models import Message, Run
from ccm.models.scheduling import BUILT_IN_SWEEPER, ScheduleRun
from ccm.scheduling.process import lease_holder, pid_of
from shared_population import feedback_settings, people

CCM = str(Path(sys.executable).with_name("ccm"))


def _env(config_file, make_settings, tmp_path) -> dict:
    settings = feedback_settings(make_settings, tmp_path, scheduler={"lease_seconds": 3, "renew_seconds": 1},
                                          ccm={"log_level": "INFO", "workers": 1})
    return dict(os.environ, CCM_CONFIG=str(config_file(settings)))


def _start(env: dict, log: Path) -> subprocess.Popen:
    with log.open("a") as out:  # the child has its own copy of the file
        return subprocess.Popen([CCM, "scheduler"], env=env, stdout=out, stderr=subprocess.STDOUT)


def _until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _held_by(engine, process: subprocess.Popen) -> bool:
    holder = lease_holder(engine)
    return holder is not None and pid_of(holder[0]) == process.pid


def _executions(engine) -> list[ScheduleRun]:
    with engine.db.session() as session:
        rows = list(session.scalars(select(ScheduleRun).where(ScheduleRun.schedule_name != BUILT_IN_SWEEPER)
                                    .order_by(ScheduleRun.fire_time)))
        session.expunge_all()
        return rows


def _ccm(env: dict, *args: str) -> None:
    subprocess.run([CCM, *args], env=env, check=True, capture_output=True, timeout=60)


def test_two_schedulers_one_active_and_a_takeover_after_sigkill(campaign_engine, config_file, make_settings, tmp_path):

    engine = campaign_engine
    env = _env(config_file, make_settings, tmp_path)
    _ccm(env, "schedules", "add", "deals-often", "--job", "campaign", "--communication", "deals", "--every", "4")
    log = tmp_path / "schedulers.log"
    first = _start(env, log)
    second = None
    try:
        _until(lambda: _held_by(engine, first), 20, "the first scheduler never became active")
        second = _start(env, log)
        _until(lambda: len([e for e in _executions(engine) if e.state == "completed"]) >= 2, 40, "the campaign did not run twice")
        assert _held_by(engine, first)  # the second one only waits
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        _until(lambda: _held_by(engine, second), 20, "the second scheduler did not take over")
        took_over = time.monotonic() - killed_at
        before = len(_executions(engine))
        _until(lambda: len([e for e in _executions(engine) if pid_of(e.holder) == second.pid and e.state == "completed"]) >= 2,
               40, "the second scheduler did not go on")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    executions = _executions(engine)
    holders = [str(pid_of(e.holder)) for e in executions]
    assert set(holders) <= {str(first.pid), str(second.pid)} and str(second.pid) in holders
    assert holders == sorted(holders, key=lambda pid: pid == str(second.pid))  # the first, then only the second
    assert len({e.fire_time for e in executions}) == len(executions)  # no fire time twice
    assert took_over < 10 and before >= 2
    with engine.db.session() as session:
        runs = session.scalar(select(func.count()).select_from(Run))
        per_run = set(session.execute(select(func.count()).select_from(Message).group_by(Message.run_id)).scalars())
    started = [e for e in executions if e.run_id is not None]
    assert runs == len(started)  # one run per execution
    assert per_run == {len(people())}  # in each run one message per customer, never two


def test_a_fire_time_missed_while_the_scheduler_was_down_runs_once_on_restart(campaign_engine, config_file, make_settings, tmp_path):

    engine = campaign_engine
    env = _env(config_file, make_settings, tmp_path)
    _ccm(env, "schedules", "add", "refresh", "--job", "segments-refresh", "--every", "5")
    log = tmp_path / "scheduler.log"
    scheduler = _start(env, log)
    try:
        _until(lambda: any(e.state == "completed" for e in _executions(engine)), 30, "the schedule never ran")
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait()
        down_from = len(_executions(engine))
        last_fire = _executions(engine)[-1].fire_time  # naive UTC
        missed = last_fire + dt.timedelta(seconds=11)  # two fire times of the 5-second schedule, and a second
        _until(lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) >= missed, 30, "the clock did not move")
        assert len(_executions(engine)) == down_from  # they passed with no scheduler at all
        scheduler = _start(env, log)
        _until(lambda: any(e.state == "completed" for e in _executions(engine)[down_from:]), 40,
               "the restarted scheduler did not catch up")
    finally:
        scheduler.terminate()
        scheduler.wait(timeout=30)
    executions = _executions(engine)
    assert len({e.fire_time for e in executions}) == len(executions)
    after = executions[down_from:]
    coalesced = [e for e in after if e.state == "coalesced"]
    caught_up = next(e for e in after if e.state != "coalesced")
    # The fire times missed while it was down ran once, for the latest of them, late (on
    # restart); the earlier ones are in the history as coalesced into that one.
    assert caught_up.state == "completed" and (caught_up.started_at - caught_up.fire_time).total_seconds() > 1
    assert coalesced and all(e.fire_time < caught_up.fire_time for e in coalesced)
    assert {e.error for e in coalesced} == {f"not run on its own: run once with {caught_up.fire_time}Z"}
    gaps = [(b.fire_time - a.fire_time).total_seconds() for a, b in zip(executions, executions[1:])]
    assert all(gap >= 5 for gap in gaps)
    # Every one completed: one killed in the middle was finished by the restarted scheduler, none left running.
    assert all(e.state in ("completed", "coalesced") for e in executions[:-1])
