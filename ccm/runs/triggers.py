"""Triggered communications: an event from another system (``POST /api/v1/events`` with a
type such as ``payment.received``) sends the communications that listen to it
(``config.trigger``) to that one customer, at once.

Each event becomes one message per listening communication, in that communication's run of
the day (cycle ``YYYY-MM-DD``, UTC), with the idempotency key ``<communication>:event:<id>``:
an event sent twice sends nothing twice. The event's ``data`` is in the message
(``messages.data``) and in the templates as ``event``. The message is handed to a delivery
thread of this process (or a Celery task with the celery executor) right after it is
written; if this process dies first, the retry sweeper sends it within a minute.
Marketing communications may listen too; they respect consent, suppressions, the
customer's topics and the frequency cap; service ones (confirmations) need service consent.
While the day's run is paused, new messages wait in it (sent on ``ccm runs resume``); once
it is cancelled, they are suppressed. An event id used before for another customer is
refused (409).
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ccm.communications import ensure_built_in
from ccm.wiring import Engine
from ccm.models import Communication, Customer, Message, MessageState, Run, RunState, utcnow
from ccm.runs import outbox
from ccm.runs.eligibility import Eligibility
from ccm.runs.policy import Choice
from ccm.authoring import effective_versions, sync_library

log = logging.getLogger(__name__)


class TriggerConflict(ValueError):
    """The event's id was used before for another customer."""


@dataclass(frozen=True)
class Triggered:
    communication: str
    message_id: int
    run_id: int
    channel: str | None
    state: str  # pending (to be sent now), held (the day's run is paused) or suppressed
    reason: str | None
    duplicate: bool


def listeners(session: Session, event_type: str) -> list[Communication]:
    ensure_built_in(session)
    return [c for c in session.scalars(select(Communication).order_by(Communication.id)) if c.config.get("trigger") == event_type]


def event_types(session: Session) -> list[str]:
    ensure_built_in(session)
    return sorted({c.config["trigger"] for c in session.scalars(select(Communication)) if c.config.get("trigger")})


def trigger(engine: Engine, event_type: str, event_id: str, customer_id: int, event: dict[str, Any],
            fingerprint: str | None = None) -> list[Triggered]:
    """Write the message of every communication listening to ``event_type``; returns them.
    ``fingerprint`` (a hash of the request) is kept with each message: the same event id
    sent again with other content is a ``TriggerConflict``, not a duplicate."""
    done = []
    with engine.db.session() as session:
        communications = listeners(session, event_type)
        if not communications:
            return []
        customer = session.scalars(select(Customer).where(Customer.id == customer_id).options(selectinload(Customer.consents))).one()
        for communication in communications:
            done.append(_message(engine, session, communication, customer, event_id, event, fingerprint))
    return done


def _message(engine: Engine, session: Session, communication: Communication, customer: Customer, event_id: str,
             event: dict[str, Any], fingerprint: str | None = None) -> Triggered:
    now = utcnow()
    run = _run_of_the_day(engine, session, communication, now)
    key = f"{communication.name}:event:{event_id}"[:200]
    existing = session.scalar(select(Message).where(Message.idempotency_key == key))
    if existing is not None:
        if existing.customer_id != customer.id:
            raise TriggerConflict(f"event id {event_id!r} was sent before for another customer")
        before = (existing.data or {}).get("request_sha256")
        if fingerprint and before and before != fingerprint:
            raise TriggerConflict(f"event id {event_id!r} was sent before with other content")
        return Triggered(communication.name, existing.id, existing.run_id, existing.channel, existing.state, existing.reason, True)
    choice = _choose(engine, session, communication, customer, run.id)
    if run.state == RunState.CANCELLED:  # an operator stopped today's messages (a broken template, say): keep them stopped
        choice = Choice(None, "run cancelled", suppressed=True)
    added = outbox.add_messages(session, [dict(
        run_id=run.id, customer_id=customer.id, feed_record_id=None, channel=choice.channel or "none", purpose="event",
        idempotency_key=key, state=MessageState.SUPPRESSED if choice.suppressed or not choice.channel else MessageState.PENDING,
        reason=choice.reason, attempts=0, template_versions={}, decisions={}, links=[], data={"event": event, "request_sha256": fingerprint},
        created_at=now, updated_at=now,
    )])
    message_id = added[0] if added else None
    if message_id is None:  # the same event at the same moment through another request
        existing = session.scalar(select(Message).where(Message.idempotency_key == key))
        return Triggered(communication.name, existing.id, existing.run_id, existing.channel, existing.state, existing.reason, True)
    # A paused run keeps its new messages pending until someone resumes it; otherwise it runs again.
    reopened = {} if run.state in (RunState.PAUSED, RunState.CANCELLED) else {"state": RunState.RUNNING, "finished_at": None}
    outbox.set_run(session, run.id, records_in=Run.records_in + 1, **reopened)
    state = "suppressed" if choice.suppressed or not choice.channel else "pending" if run.state != "paused" else "held"
    log.info("triggered message %s of %s: %s", message_id, communication.name, state)
    return Triggered(communication.name, message_id, run.id, choice.channel, state, choice.reason, False)


def _run_of_the_day(engine: Engine, session: Session, communication: Communication, now: dt.datetime) -> Run:
    cycle = now.strftime("%Y-%m-%d")
    run = session.scalar(select(Run).where(Run.communication_id == communication.id, Run.cycle == cycle))
    if run is None:  # the day's first event: the library as it is now is what the day's messages use
        sync_library(session, engine.templates_dir)
        outbox.open_run(session, communication_id=communication.id, cycle=cycle, state=RunState.RUNNING, records_in=0,
                        template_versions=effective_versions(session), options={"triggered": True}, created_at=now, started_at=now)
        run = session.scalar(select(Run).where(Run.communication_id == communication.id, Run.cycle == cycle))
    return run


def _choose(engine: Engine, session: Session, communication: Communication, customer: Customer, run_id: int) -> Choice:
    """The same decision as planning makes (``ccm.runs.eligibility``), for one customer."""
    return Eligibility(engine, session, communication, run_id=run_id).choose([customer])[customer.id]


# --------------------------------------------------------------------------- delivering at once


class Dispatcher:
    """A thread of the web process that delivers triggered messages as they are written
    (one Worker per run, kept: templates and the renderer are set up once)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queue: queue.Queue[int] = queue.Queue()
        self.workers: dict[int, Any] = {}
        self.celery: Any = None
        self.thread = threading.Thread(target=self._loop, name="ccm-trigger-dispatch", daemon=True)
        self.thread.start()

    def submit(self, run_id: int) -> None:
        if self.engine.settings["ccm"]["executor"] == "celery":
            from ccm.runs.distributed import TASK, make_celery

            if self.celery is None:
                self.celery = make_celery(self.engine.settings)
            self.celery.send_task(TASK, args=[run_id])
            return
        self.queue.put(run_id)

    def _loop(self) -> None:
        from ccm.runs.deliver import Worker

        while True:
            run_id = self.queue.get()
            try:
                worker = self.workers.get(run_id)
                if worker is None:
                    while len(self.workers) >= 8:
                        self.workers.pop(next(iter(self.workers)))
                    worker = self.workers[run_id] = Worker(self.engine, run_id)
                while worker.run_one_chunk():
                    pass
            except Exception as exc:  # the sweeper sends what is left; this thread goes on, with a fresh Worker
                self.workers.pop(run_id, None)
                log.error("run %s: delivering triggered messages failed: %s", run_id, type(exc).__name__)


_dispatchers: dict[int, Dispatcher] = {}
_lock = threading.Lock()


def dispatcher(engine: Engine) -> Dispatcher:
    with _lock:
        if id(engine) not in _dispatchers:
            _dispatchers[id(engine)] = Dispatcher(engine)
        return _dispatchers[id(engine)]
