"""Executing a planned run on this machine: in this process (one worker) or a pool of
worker processes, each claiming chunks from the outbox.

Ctrl-C or SIGTERM stops every worker between two messages: the sends it has in flight
finish and their outcomes are written, the rest of its claims are given back, and the run
is paused, to be finished by ``ccm runs resume ID`` (nothing is sent twice). A worker
killed outright leaves claims that resume takes again (see ``claims.release_dead_claims``);
of those, only the messages it had in flight (at most ``deliver.RECORD_BATCH``) can have
gone out already, and go out again.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import Any

from sqlalchemy import func, select, update

from channels import channel_from_url
from ccm.db import Database
from ccm.engine import Engine
from ccm.models import Message, Run, utcnow
from ccm.progress import progress_bar
from ccm.runs.claims import release_dead_claims
from ccm.runs.deliver import Worker
from ccm.runs.gate import critical_channels
from ccm.runs.report import read_books

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
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: self.event.set())
        return previous

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


def _set_state(engine: Engine, run_id: int, **values: Any) -> None:
    with engine.db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(**values))


def execute(engine: Engine, run_id: int, *, workers: int | None = None, progress: bool = True, executor: str | None = None) -> str:
    """Deliver every claimable message of the run; return the run's state afterwards.

    ``executor`` is ``local`` (this process, or a pool of ``workers`` processes) or
    ``celery`` (workers started with ``ccm worker`` on any machine); default from settings.
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
    with engine.db.session() as session:
        run = session.get(Run, run_id)
        run.state, run.finished_at, run.error = "running", None, None
        run.started_at = run.started_at or utcnow()
    todo = _count(engine, run_id, ("pending", "claimed", "failed"))
    done_before = _count(engine, run_id, DONE_STATES)
    stop = _StopFlag()
    previous = stop.install()
    count = worker_count(engine, workers)
    try:
        if kind == "celery":
            from ccm.runs.distributed import run_with_celery

            run_with_celery(engine, run_id, stop, progress)
        else:
            with progress_bar(todo, f"run {run_id}", enabled=progress) as bar:
                if count == 1:
                    _watch_inline(engine, run_id, stop, bar)
                else:
                    _run_pool(engine, run_id, count, stop, bar, done_before)
    except Exception as exc:
        _set_state(engine, run_id, state="failed", error=f"stopped by an error: {type(exc).__name__}: {exc}"[:1000], finished_at=utcnow())
        raise
    finally:
        _StopFlag.restore(previous)
        _complete_print_batches(engine)
    state = _finish(engine, run_id, interrupted=stop())
    if state == "completed":
        _produce_print(engine, run_id)
    return state


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
    with ProcessPoolExecutor(max_workers=count, mp_context=context, initializer=_child_init) as pool:
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


def _child_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sends SIGTERM
    signal.signal(signal.SIGTERM, lambda *_: _child_stop.event.set())


def _child_work(settings: dict, run_id: int) -> dict:
    engine = Engine(settings=settings, db=Database(settings["ccm"]["database_url"]))
    try:
        stats = Worker(engine, run_id, should_stop=_child_stop).run()
        return {"sent": stats.sent, "failed": stats.failed, "dead": stats.dead}
    finally:
        engine.close()


def _finish(engine: Engine, run_id: int, *, interrupted: bool) -> str:
    with engine.db.session() as session:
        run = session.get(Run, run_id)
        if run.state in ("paused", "cancelled"):  # set by someone else while we worked (a person: never "waiting")
            return run.state
        open_count = session.scalar(
            select(func.count()).where(Message.run_id == run_id, Message.state.in_(("pending", "claimed")))
        )
        failed = session.scalar(select(func.count()).where(Message.run_id == run_id, Message.state == "failed"))
        waits = session.execute(
            select(Message.reason, func.count(), func.min(Message.next_attempt_at))
            .where(Message.run_id == run_id, Message.state == "deferred")
            .group_by(Message.reason)
            .order_by(func.count().desc(), Message.reason)
        ).all()
        deferred = sum(n for _, n, _ in waits)
        problems = read_books(session, run).problems()
        until = min((first for _, _, first in waits if first is not None), default=None)
        if interrupted or open_count:
            run.state = "paused"
        elif deferred:  # nothing to do now; the retry sweeper (or ccm runs resume) sends them when due
            run.state = "waiting"
            why = "; ".join(f"{n} {reason or 'deferred'}" for reason, n, _ in waits[:3]) + ("; ..." if len(waits) > 3 else "")
            first = f", the first until {until:%Y-%m-%d %H:%M} UTC" if until else ""
            run.error = (
                f"{deferred} {'message waits' if deferred == 1 else 'messages wait'} for a later time ({why}){first}: "
                f"the scheduler's retry sweeper sends them then, or ccm runs resume {run_id}"
            )
        elif failed or problems:  # complete only when the books balance; else say what does not add up
            run.state = "failed"
            retrying = [f"{failed} messages failed delivery and will be retried by ccm runs resume {run_id}"] if failed else []
            run.error = "; ".join(retrying + [f"does not reconcile: {problem}" for problem in problems])
            run.finished_at = utcnow()
            if problems:
                log.error("run %s does not reconcile: %s", run_id, "; ".join(problems))
        else:
            run.state, run.error, run.finished_at = "completed", None, utcnow()
        return run.state
