"""Executing a planned run on this machine: in this process (one worker) or a pool of
worker processes, each claiming chunks from the outbox.

Ctrl-C or SIGTERM stops every worker between two messages: the sends it has in flight
finish and their outcomes are written, the rest of its claims are given back, and the run
is paused, to be finished by ``ccm runs resume ID`` (nothing is sent twice). A worker
killed outright leaves claims that resume takes again (see ``outbox.release_dead_claims``);
of those, only the messages it had in flight (at most ``deliver.RECORD_BATCH``) can have
gone out already, and go out again.
"""
from __future__ import annotations

import ctypes
import datetime as dt
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy import func, select

from channels import channel_from_url
from ccm.db import Database
from ccm.wiring import Engine
from ccm.models import Message, MessageState, Run, RunState, utcnow
from ccm.progress import progress_bar
from ccm import outbound
from ccm.runs import outbox
from ccm.runs.outbox import release_dead_claims, worker_id
from ccm.runs.periodic import Every, set_on_signal
from ccm.runs.deliver import Worker
from ccm.runs.gate import critical_channels
from ccm.runs.books import read_books

log = logging.getLogger(__name__)
FINAL_STATES = ("sent", "dead", "suppressed")
EXECUTORS = ("local", "celery")
DONE_STATES = FINAL_STATES + ("failed",)  # for progress: failed is done for this pass (retried later)


class RunStateError(Exception):
    """The run is in a state that does not allow this; the message says which."""


class _StopFlag:
    """Set by SIGINT/SIGTERM; workers look at it between messages."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def install(self) -> dict[int, Any]:
        if threading.current_thread() is threading.main_thread():
            return set_on_signal(self.event)
        return {}

    @staticmethod
    def restore(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def load_run(session: Any, run_id: int, *, resumable: bool = False) -> Run:
    """The run, or LookupError; with ``resumable``, RunStateError for a cancelled run."""
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"no such run: {run_id}")
    if resumable and run.state == "cancelled":
        raise RunStateError(f"run {run_id} was cancelled; a cancelled run is not resumed")
    return run


def worker_count(engine: Engine, requested: int | None) -> int:
    configured = requested if requested is not None else engine.settings["ccm"]["workers"]
    return configured if configured and configured > 0 else (os.cpu_count() or 1)


def _count(engine: Engine, run_id: int, states: tuple[str, ...]) -> int:
    with engine.db.reader() as session:
        return session.scalar(select(func.count()).where(Message.run_id == run_id, Message.state.in_(states))) or 0


def execute(engine: Engine, run_id: int, *, workers: int | None = None, progress: bool = True, executor: str | None = None) -> str:
    """Deliver every claimable message of the run; return the run's state afterwards.

    ``executor`` is ``local`` (this process, or a pool of ``workers`` processes) or
    ``celery`` (workers started with ``ccm worker`` on any machine); default from settings.
    The run stays with this process while something is due soon: a retry or deferral due
    within ``[delivery] wait_seconds``, or claims of another process until their lease ends
    (a worker that died a moment ago); later ones are left to the retry sweeper (``waiting``).
    """
    kind = executor or engine.settings["ccm"]["executor"]
    if kind not in EXECUTORS:
        raise RunStateError(f"no such executor: {kind} (choose {' or '.join(EXECUTORS)})")
    with engine.db.session() as session:
        run = load_run(session, run_id, resumable=True)
        critical_channels(run.communication)  # a bad entry is one clear error, before anything is sent
    freed = release_dead_claims(engine, run_id)
    if freed:
        log.info("run %s: took back %s claims of stopped workers", run_id, freed)
    owner = worker_id()
    outbox.set_run_now(engine, run_id, state="running", finished_at=None, error=None, owner=owner, heartbeat_at=utcnow(),
               started_at=func.coalesce(Run.started_at, utcnow()))
    stop = _StopFlag()
    previous = stop.install()
    try:
        with heartbeat(engine, run_id, owner):
            _deliver_until_done(engine, run_id, kind, worker_count(engine, workers), stop, progress)
    except BrokenProcessPool as exc:  # a worker process died (killed, out of memory): resumable, not an error of the run
        _stopped(engine, run_id, state="interrupted", owner=None,
                 error=f"a worker process died ({exc}); ccm runs resume {run_id} finishes it (so does the retry sweeper)")
        log.error("run %s interrupted: a worker process died", run_id)
        return "interrupted"
    except Exception as exc:
        _stopped(engine, run_id, state="failed", owner=None, error=f"stopped by an error: {type(exc).__name__}: {exc}"[:1000],
                 finished_at=utcnow())
        raise
    finally:
        _StopFlag.restore(previous)
        _complete_print_batches(engine)
    state = _finish(engine, run_id, stopped=stop())
    if state in ("completed", "undelivered"):
        _produce_print(engine, run_id)
    return state


def _stopped(engine: Engine, run_id: int, **values: Any) -> None:
    """The run stopped short (interrupted, failed): written with its run.needs_attention event."""
    with engine.db.session() as session:
        outbox.set_run(session, run_id, **values)
        outbound.emit_run(session, run_id)


def _deliver_until_done(engine: Engine, run_id: int, kind: str, count: int, stop: _StopFlag, progress: bool) -> None:
    todo = _count(engine, run_id, ("pending", "claimed", "failed"))
    done_before = _count(engine, run_id, DONE_STATES)
    with progress_bar(todo, f"run {run_id}", enabled=progress and kind != "celery") as bar:
        while True:
            if kind == "celery":
                from ccm.runs.distributed import run_with_celery

                run_with_celery(engine, run_id, stop, progress)
            elif count == 1:
                _watch_inline(engine, run_id, stop, bar)
            else:
                _run_pool(engine, run_id, count, stop, bar, done_before)
            if stop() or outbox.run_state(engine, run_id) != "running":
                return
            due = _next_due(engine, run_id)
            if due is None:
                return
            log.info("run %s: waiting %.1f s for messages due soon (retries, claims of a stopped worker)", run_id, due)
            if stop.event.wait(due):
                return
            release_dead_claims(engine, run_id)


def _next_due(engine: Engine, run_id: int) -> float | None:
    """Seconds until a message of the run can be taken again, if that is soon: a retry or a
    deferral within ``[delivery] wait_seconds``, a claim of another process when its lease
    ends. None when nothing is due soon."""
    now = utcnow()
    horizon = now + dt.timedelta(seconds=engine.settings["delivery"]["wait_seconds"])
    max_attempts = engine.settings["ccm"]["max_attempts"]
    with engine.db.reader() as session:
        if session.scalar(select(func.count()).where(Message.run_id == run_id, Message.state == "pending")):
            return 0.0
        soonest = session.scalar(
            select(func.min(Message.next_attempt_at)).where(
                Message.run_id == run_id,
                ((Message.state == "failed") & (Message.attempts < max_attempts)) | (Message.state == "deferred"),
            )
        )
        claims_end = session.scalar(
            select(func.max(Message.lease_until)).where(Message.run_id == run_id, Message.state == "claimed")
        )
    if claims_end is not None:  # held by another process (alive: it finishes them; dead: its lease ends)
        return max(0.5, min((claims_end - now).total_seconds(), 5.0))
    if soonest is None or soonest > horizon:
        return None
    return max(0.0, (soonest - now).total_seconds()) + 0.05


def _produce_print(engine: Engine, run_id: int) -> None:
    """Once a run is complete: its print batches re-ordered for the post (postal code,
    households in one envelope) into production streams and a manifest."""
    with engine.db.reader() as session:
        batches = list(
            session.scalars(
                select(Message.batch_id)
                .where(Message.run_id == run_id, Message.channel == "print", Message.state == "sent", Message.batch_id.is_not(None))
                .distinct()
            )
        )
    if not batches:
        return
    channel = channel_from_url(engine.settings["channels"]["print"])
    produce = getattr(channel, "produce", None)
    if produce is not None:
        folder = produce(sorted(batches), f"run{run_id}", max_documents=engine.settings["production"]["stream_documents"])
        log.info("run %s: print production in %s", run_id, folder)


def _complete_print_batches(engine: Engine) -> None:
    """Build the print stream of any batch a stopped worker left without one."""
    try:
        channel = channel_from_url(engine.settings["channels"]["print"])
        recover = getattr(channel, "recover", None)
        if recover is not None:
            recover()
    except Exception:  # never hide the run's own outcome behind this
        log.error("could not complete the print batches", exc_info=True)


def _watch_inline(engine: Engine, run_id: int, stop: _StopFlag, bar: Any) -> None:
    def counted(state: object) -> None:
        if state in DONE_STATES:
            bar.advance()

    Worker(engine, run_id, should_stop=stop, on_outcome=counted).run()


def _run_pool(engine: Engine, run_id: int, count: int, stop: _StopFlag, bar: Any, done_before: int) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=count, mp_context=context, initializer=_child_init, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(_child_work, engine.settings, run_id) for _ in range(count)]
        seen = 0
        while True:
            finished, pending = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
            done = _count(engine, run_id, DONE_STATES) - done_before
            if done > seen:
                bar.advance(done - seen)
                seen = done
            failed = any(f.exception() for f in finished)
            if stop() or failed:  # stop every worker between messages (one failed: the run stops on it)
                for child_pid in list(pool._processes or {}):
                    try:
                        os.kill(child_pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            if not pending or failed:
                break
        for future in futures:
            if future.done() and future.exception():
                raise future.exception()  # type: ignore[misc]


_child_stop = _StopFlag()
_child_idle = threading.Event()  # clear while the worker delivers a chunk of claims
_child_idle.set()


def _child_init(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sends SIGTERM
    set_on_signal(_child_stop.event, signal.SIGTERM)
    _stop_with_parent(parent)


PR_SET_PDEATHSIG = 1


def _stop_with_parent(parent: int) -> None:
    """A worker stops (between two messages, its claims given back) when the process that
    runs the pool dies, even by ``kill -9``: on Linux the kernel sends it SIGTERM then
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread looks for the parent every second.
    Then it exits, busy or idle: nobody is left to take its result or give it more work."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        _child_stop.event.set()
        _child_idle.wait()  # the chunk at hand finished, its other claims given back
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _child_work(settings: dict, run_id: int) -> dict:
    _child_idle.clear()
    engine = Engine(settings=settings, db=Database(settings["ccm"]["database_url"]))
    try:
        stats = Worker(engine, run_id, should_stop=_child_stop).run()
        return {"sent": stats.sent, "failed": stats.failed, "dead": stats.dead}
    finally:
        engine.close()
        _child_idle.set()


def _finish(engine: Engine, run_id: int, *, stopped: bool) -> str:
    """The run's outcome once its process is done with it (see ``ccm.models.RunState``)."""
    with engine.db.session() as session:
        run = session.get(Run, run_id)
        if run.state in (RunState.PAUSED, RunState.CANCELLED):  # set by a person (or after failures in a row) meanwhile
            outbox.set_run(session, run_id, owner=None)
            return run.state
        counts = dict(
            session.execute(select(Message.state, func.count()).where(Message.run_id == run_id).group_by(Message.state)).all()
        )
        problems = read_books(session, run).problems()
        now = utcnow()
        if problems:  # complete only when the books balance; else say what does not add up
            log.error("run %s does not reconcile: %s", run_id, "; ".join(problems))
            outcome = {"state": RunState.FAILED, "finished_at": now, "error": "; ".join(f"does not reconcile: {p}" for p in problems)}
        elif stopped or counts.get(MessageState.PENDING) or counts.get(MessageState.CLAIMED):
            outcome = {"state": RunState.PAUSED, "error": f"stopped (Ctrl-C or SIGTERM) before it finished: ccm runs resume {run_id}"}
        elif counts.get(MessageState.FAILED) or counts.get(MessageState.DEFERRED):  # the retry sweeper sends them when due
            outcome = {"state": RunState.WAITING, "error": _waiting_why(session, run_id)}
        elif counts.get(MessageState.DEAD):
            outcome = {"state": RunState.UNDELIVERED, "finished_at": now, "error": _undelivered_why(session, run_id, counts[MessageState.DEAD])}
        else:
            outcome = {"state": RunState.COMPLETED, "finished_at": now, "error": None}
        outbox.set_run(session, run_id, owner=None, **outcome)
        outbound.emit_run(session, run_id)  # run.completed, or run.needs_attention when failed
        return outcome["state"]


def _waiting_why(session: Any, run_id: int) -> str:
    waits = session.execute(
        select(Message.state, Message.reason, func.count(), func.min(Message.next_attempt_at))
        .where(Message.run_id == run_id, Message.state.in_(("failed", "deferred")))
        .group_by(Message.state, Message.reason)
        .order_by(func.count().desc(), Message.reason)
    ).all()
    total = sum(n for _, _, n, _ in waits)
    why = "; ".join(f"{n} retrying after {reason or 'a failure'}" if state == "failed" else f"{n} {reason or 'deferred'}"
                    for state, reason, n, _ in waits[:3])
    until = min((first for *_, first in waits if first is not None), default=None)
    first = f", the first until {until:%Y-%m-%d %H:%M} UTC" if until else ""
    return (f"{total} {'message waits' if total == 1 else 'messages wait'} for a later time ({why}{'; ...' if len(waits) > 3 else ''})"
            f"{first}: the scheduler's retry sweeper sends them then, or ccm runs resume {run_id}")[:2000]


def _undelivered_why(session: Any, run_id: int, dead: int) -> str:
    reasons = session.execute(
        select(Message.channel, Message.reason, func.count())
        .where(Message.run_id == run_id, Message.state == "dead")
        .group_by(Message.channel, Message.reason)
        .order_by(func.count().desc())
        .limit(4)
    ).all()
    why = "; ".join(f"{n} × {channel}: {reason}" for channel, reason, n in reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
    return f"{dead} {'message' if dead == 1 else 'messages'} undelivered, no channel left ({why})"[:2000]


def heartbeat(engine: Engine, run_id: int, owner: str) -> Every:
    """While a process executes a run it is the run's ``owner`` and renews ``heartbeat_at``
    every sixth of ``[ccm] lease_seconds``. A run left ``running`` whose owner died (on
    this host) or that was not heard from for a whole lease (another host) is
    *interrupted* (``outbox.observed_state``), and the retry sweeper resumes it."""
    return Every(engine.settings["ccm"]["lease_seconds"] / 6,
                 lambda: outbox.set_run_now(engine, run_id, Run.owner == owner, heartbeat_at=utcnow()), f"heartbeat-run{run_id}")
