"""The celery executor: the same outbox and the same ``Worker``, with workers on any
number of machines (``ccm worker``), a broker (Redis or RabbitMQ) and PostgreSQL.

A task is "deliver one chunk of run N": it claims whatever is claimable, so a task run
twice (acks_late redelivery after a worker died) or one too many does no harm, and it
returns only when every outcome of its chunk is written. The producer (``ccm run ...
--executor celery``) queues one task per chunk, then watches the outbox; claims left by a
dead worker are taken again by a further task once their lease ends. Safe settings:
``acks_late`` with idempotent tasks, prefetch 1, a visibility timeout well above the
longest task.
"""
from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

from celery import Celery
from sqlalchemy import func, select

from ccm.db import Database
from ccm.wiring import Engine
from ccm.models import Message, utcnow
from ccm.progress import progress_bar
from ccm.runs import outbox
from ccm.runs.outbox import claimable
from ccm.runs.deliver import Worker

log = logging.getLogger(__name__)

TASK = "ccm.deliver_chunk"
RESUBMIT_SECONDS = 10.0


class ExecutorError(Exception):
    """The executor cannot run as configured; the message says what to set."""


def make_celery(settings: dict) -> Celery:
    broker = settings["ccm"]["broker_url"]
    if not broker:
        raise ExecutorError("the celery executor needs a broker: set CCM_BROKER_URL (redis://host:6379/0 or amqp://…)")
    app = Celery("ccm", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": max(3600, 4 * settings["ccm"]["lease_seconds"])},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK, ignore_result=True)(_task(settings))
    return app


_engines: dict[int, Engine] = {}


def _engine(settings: dict) -> Engine:
    """One engine per worker process (made after the pool forks)."""
    pid = os.getpid()
    if pid not in _engines:
        _engines[pid] = Engine(settings=settings, db=Database(settings["ccm"]["database_url"]))
    return _engines[pid]


_workers: dict[tuple[int, int], Worker] = {}


def _worker(settings: dict, run_id: int) -> Worker:
    """One Worker per run and process: templates, renderer, fonts and parsed CSS are set up
    once, not for every chunk. Only the few most recent runs are kept."""
    key = (os.getpid(), run_id)
    if key not in _workers:
        while len(_workers) >= 4:
            _workers.pop(next(iter(_workers)))
        _workers[key] = Worker(_engine(settings), run_id)
    return _workers[key]


def _task(settings: dict):  # type: ignore[no-untyped-def]
    def deliver_chunk(run_id: int) -> int:
        return _worker(settings, run_id).run_one_chunk()

    deliver_chunk.__name__ = "deliver_chunk"
    return deliver_chunk


def _claimable_now(engine: Engine, run_id: int) -> int:
    with engine.db.reader() as session:
        condition = claimable(run_id, utcnow(), engine.settings["ccm"]["max_attempts"])
        return session.scalar(select(func.count()).where(condition)) or 0


def _open(engine: Engine, run_id: int) -> int:
    with engine.db.reader() as session:
        return session.scalar(
            select(func.count()).where(Message.run_id == run_id, Message.state.in_(("pending", "claimed")))
        ) or 0


def check_ready(engine: Engine) -> None:
    """Fail before anything is planned when the celery executor cannot work as configured."""
    if engine.db.is_sqlite:
        raise ExecutorError("the celery executor needs a database every worker can reach: set CCM_DATABASE_URL to PostgreSQL")
    if not engine.settings["ccm"]["broker_url"]:
        raise ExecutorError("the celery executor needs a broker: set CCM_BROKER_URL (redis://host:6379/0 or amqp://…)")


def run_with_celery(engine: Engine, run_id: int, stop: Any, progress: bool) -> None:
    """Queue the run's chunks and wait until the outbox has nothing open (or ``stop()``)."""
    check_ready(engine)
    app = make_celery(engine.settings)
    todo = _claimable_now(engine, run_id)
    tasks = math.ceil(todo / engine.settings["ccm"]["chunk_size"]) if todo else 0
    for _ in range(tasks):
        app.send_task(TASK, args=[run_id])
    log.info("run %s: queued %s chunk tasks", run_id, tasks)
    last_submit = time.monotonic()
    with progress_bar(todo, f"run {run_id}", enabled=progress) as bar:
        seen = 0
        while not stop():
            remaining = _open(engine, run_id)
            done = max(0, todo - remaining)
            if done > seen:
                bar.advance(done - seen)
                seen = done
            if remaining == 0 or outbox.run_state(engine, run_id) not in ("planned", "running"):
                break  # done, or paused/cancelled (by a command or after failures in a row)
            if time.monotonic() - last_submit > RESUBMIT_SECONDS and _claimable_now(engine, run_id):
                app.send_task(TASK, args=[run_id])  # e.g. claims of a dead worker whose lease ended
                last_submit = time.monotonic()
            time.sleep(0.5)


def start_worker(settings: dict, concurrency: int | None, loglevel: str = "INFO") -> None:
    """Run a Celery worker for this engine in the foreground (``ccm worker``)."""
    app = make_celery(settings)
    argv = ["worker", f"--loglevel={loglevel}", "--without-gossip", "--without-mingle", "--pool=prefork"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main(argv)
