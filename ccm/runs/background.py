"""Cycles started from the console: planned in the request, executed in a daemon thread of
the server process (never inside the request). The thread calls the same ``execute`` as
``ccm run``; if the process dies meanwhile, the run is seen as ``interrupted`` and is
resumed like any other (``resume_in_background``, ``ccm runs resume``, the retry sweeper).

One thread per run in this process: starting or resuming a run that is still executing
here is refused, so two threads never work one run side by side.
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy import func, select

from ccm.communications import MARKETING, ensure_built_in
from ccm.models import Communication, Message, MessageState
from ccm.runs import outbox
from ccm.runs.executor import RunStateError, execute, load_run
from ccm.runs.outbox import observed_state
from ccm.runs.plan import PlanResult, plan_run
from ccm.runs.service import check_channels, check_executor
from ccm.wiring import Engine

log = logging.getLogger(__name__)
CYCLE_KINDS = ("statement", "bill")  # communications planned from the billing feed

_threads: dict[int, threading.Thread] = {}
_lock = threading.Lock()


def cycle_communications(engine: Engine) -> list[tuple[str, str]]:
    """The communications a billing cycle can run (statements, bills): (name, title)."""
    with engine.db.session() as session:
        ensure_built_in(session)
        rows = session.execute(select(Communication.name, Communication.title)
                               .where(Communication.kind.in_(CYCLE_KINDS), Communication.kind != MARKETING)
                               .order_by(Communication.name))
        return [(name, title) for name, title in rows]


def executing(run_id: int) -> bool:
    """Whether a thread of this process is executing the run now."""
    with _lock:
        thread = _threads.get(run_id)
        return thread is not None and thread.is_alive()


def wait(run_id: int, timeout: float | None = None) -> bool:
    """Wait for this process's thread of the run to end; True when none is left."""
    with _lock:
        thread = _threads.get(run_id)
    if thread is not None:
        thread.join(timeout)
    return not executing(run_id)


def launch(engine: Engine, run_id: int) -> None:
    """Execute the run in a daemon thread of this process; refused while one is at it."""
    with _lock:
        thread = _threads.get(run_id)
        if thread is not None and thread.is_alive():
            raise RunStateError(f"run {run_id} is executing already")
        thread = threading.Thread(target=_execute, args=(engine, run_id), name=f"ccm-run-{run_id}", daemon=True)
        _threads[run_id] = thread
        thread.start()


def _execute(engine: Engine, run_id: int) -> None:
    try:
        state = execute(engine, run_id, progress=False)
        log.info("run %s executed in the background: %s", run_id, state)
    except Exception:  # the executor has recorded the run as failed with the reason
        log.error("run %s stopped by an error in the background", run_id, exc_info=True)


def start_cycle(engine: Engine, communication: str, cycle: str, *, audience: str | None = None) -> PlanResult:
    """Plan the cycle (idempotent: planning twice adds nothing) and execute it in the
    background; a run planned before and paused stays paused."""
    check_channels(engine)
    check_executor(engine, None)
    plan = plan_run(engine, communication, cycle, audience=audience)
    with engine.db.reader() as session:
        run = load_run(session, plan.run_id)
        state = observed_state(run, engine.settings)
    if state == "running" or executing(plan.run_id):
        return plan  # already on its way: the plan added what was missing, the running executor sends it
    if state not in ("paused", "cancelled"):
        launch(engine, plan.run_id)
    return plan


def resume_in_background(engine: Engine, run_id: int, *, retry_now: bool = False) -> None:
    """Take a paused, waiting, interrupted or failed run up again in the background; with
    ``retry_now`` its failed messages are due at once."""
    check_channels(engine)
    check_executor(engine, None)
    with engine.db.session() as session:
        run = load_run(session, run_id, resumable=True)
        if observed_state(run, engine.settings) == "running" or executing(run_id):
            raise RunStateError(f"run {run_id} is running; pause it first")
        if retry_now:
            outbox.retry_now(session, run_id)
    launch(engine, run_id)


def retry_failed_now(engine: Engine, run_id: int) -> int:
    """Failed messages (waiting for their retry) are due now; a run that is not executing
    is taken up in the background to send them. Returns how many were made due."""
    with engine.db.reader() as session:
        run = load_run(session, run_id, resumable=True)
        state = observed_state(run, engine.settings)
        failed = session.scalar(select(func.count()).where(Message.run_id == run_id, Message.state == MessageState.FAILED)) or 0
    if not failed:
        return 0
    if state == "running" or executing(run_id):
        with engine.db.session() as session:
            outbox.retry_now(session, run_id)  # the executor at work picks them up
    elif state == "paused":
        with engine.db.session() as session:
            outbox.retry_now(session, run_id)  # due as soon as the run is resumed
    else:
        resume_in_background(engine, run_id, retry_now=True)
    return failed

