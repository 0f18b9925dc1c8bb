"""The outbox, and the only writer of run and message state (a test holds every other
module of the engine to reading them).

Here: runs opened and reopened; messages added once (insert-or-ignore on their idempotency
key: planning, triggered sends, date reminders and fallbacks all add them here); claims
taken with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's writes are
serialised), renewed while the worker lives, given back, or freed when the process that
held them died; outcomes recorded, each guarded by its claim; the run's state set.

A worker is ``host:pid:start``. Whether a process is alive is never ``os.kill(pid, 0)``: a
zombie (killed, not yet reaped) answers it, and so does an unrelated process that got the
same PID. A process counts as alive only when it exists, is not a zombie and started at
the time its identity names (psutil). The claims of a process that died on this host are
freed at once by ``ccm runs resume``; those of another host when their lease ends.
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import socket

import psutil

from typing import Any, Iterable, Sequence

from sqlalchemy import and_, bindparam, delete, insert, or_, select, true, update
from sqlalchemy.orm import Session

from ccm import outbound
from ccm.db import insert_or_ignore
from ccm.wiring import Engine
from ccm.models import ArchivedDocument, Message, MessageState, Run, RunState, utcnow


def worker_id() -> str:
    """This process: ``host:pid:start`` (start time in centiseconds, hexadecimal)."""
    return _identity(os.getpid())


@functools.cache
def _identity(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{_started(pid):x}"


def _started(pid: int) -> int:
    return round(psutil.Process(pid).create_time() * 100)


def process_alive(identity: str | None) -> bool | None:
    """Whether the process an identity names is alive: True or False on this host, None
    for another host (only its lease can tell). ``host:pid`` without a start time (older
    claims) is judged by the PID alone, zombies still counted as dead."""
    host, pid, started = _parse(identity or "")
    if host != socket.gethostname() or pid is None:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or _started(pid) == started
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _parse(identity: str) -> tuple[str, int | None, int | None]:
    parts = identity.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        try:
            return parts[0], int(parts[1]), int(parts[2], 16)
        except ValueError:
            pass
    host, _, pid = identity.rpartition(":")
    return host, int(pid) if pid.isdigit() else None, None


def claimable(run_id: int, now: dt.datetime, max_attempts: int):  # type: ignore[no-untyped-def]
    """Messages of the run a worker may take now."""
    return and_(
        Message.run_id == run_id,
        or_(
            Message.state == "pending",
            and_(Message.state == "failed", Message.next_attempt_at <= now, Message.attempts < max_attempts),
            and_(Message.state == "claimed", Message.lease_until < now),
            and_(Message.state == "deferred", Message.next_attempt_at <= now),
        ),
    )


def claim(engine: Engine, run_id: int, limit: int, identity: str) -> list[int]:
    """Claim up to ``limit`` messages in id order; returns their ids (empty when none left)."""
    ccm = engine.settings["ccm"]
    now = utcnow()
    with engine.db.session() as session:
        state = session.scalar(select(Run.state).where(Run.id == run_id))
        if state not in ("planned", "running"):
            return []
        ids = list(
            session.scalars(
                select(Message.id)
                .where(claimable(run_id, now, ccm["max_attempts"]))
                .order_by(Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            session.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(state="claimed", claimed_by=identity, lease_until=now + dt.timedelta(seconds=ccm["lease_seconds"]))
            )
        return ids


def release_dead_claims(engine: Engine, run_id: int) -> int:
    """Free claims held by processes of this host that no longer exist; returns how many."""
    freed = 0
    with engine.db.session() as session:
        holders = session.scalars(
            select(Message.claimed_by).where(Message.run_id == run_id, Message.state == "claimed").distinct()
        )
        for holder in list(holders):
            if process_alive(holder) is False:
                result = session.execute(
                    update(Message)
                    .where(Message.run_id == run_id, Message.state == "claimed", Message.claimed_by == holder)
                    .values(state="pending", claimed_by=None, lease_until=None)
                )
                freed += result.rowcount
    return freed



def observed_state(run: Run, settings: dict, now: dt.datetime | None = None) -> str:
    """The run's state as an operator should see it: ``interrupted`` for a run left
    ``running`` by a process that died (on this host: at once; elsewhere: once its
    heartbeat is a whole lease old), else the state written."""
    if run.state != "running" or run.owner is None:
        return run.state
    alive = process_alive(run.owner)
    if alive is None:
        stale = (now or utcnow()) - dt.timedelta(seconds=settings["ccm"]["lease_seconds"])
        alive = run.heartbeat_at is not None and run.heartbeat_at >= stale
    return "running" if alive else "interrupted"


# --------------------------------------------------------------------------- runs


def open_run(session: Session, **values: Any) -> None:
    """Add a run unless its communication has one for that cycle (``values`` hold both)."""
    session.execute(insert_or_ignore(session, Run, "communication_id", "cycle").values(**values))


def run_state(engine: Engine, run_id: int) -> str | None:
    """The run's state as written (``observed_state`` tells a dead process's run apart)."""
    with engine.db.reader() as session:
        return session.scalar(select(Run.state).where(Run.id == run_id))


def set_run(session: Session, run_id: int, *conditions: Any, **values: Any) -> bool:
    """Write the run's state and bookkeeping (only where ``conditions`` hold); True when it did."""
    return session.execute(update(Run).where(Run.id == run_id, *conditions).values(**values)).rowcount == 1


def set_run_now(engine: Engine, run_id: int, *conditions: Any, **values: Any) -> bool:
    """``set_run`` in a transaction of its own."""
    with engine.db.session() as session:
        return set_run(session, run_id, *conditions, **values)


def reopen(session: Session, run_id: int, state: RunState, *, when: Iterable[str], **values: Any) -> bool:
    """Take a finished run up again (new messages for it, a fallback after a bounce): to
    ``state`` when it is in one of ``when``."""
    return set_run(session, run_id, Run.state.in_(tuple(when)), state=state, **values)


# --------------------------------------------------------------------------- messages


def add_messages(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Add the messages whose idempotency key is new; returns their ids (a key seen before
    adds nothing: planning twice, an event sent again, a bounce reported twice)."""
    if not rows:
        return []
    statement = insert_or_ignore(session, Message, "idempotency_key").returning(Message.id)
    return list(session.execute(statement, list(rows)).scalars())


def set_messages(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Update messages by id (``rows``: ``{"id": ..., "state": ..., ...}``), a thousand at a time."""
    for start in range(0, len(rows), 1000):
        session.execute(update(Message), list(rows[start:start + 1000]))


def retry_now(session: Session, run_id: int) -> None:
    """Messages waiting for a retry are due at once (``ccm runs resume --retry-now``)."""
    session.execute(update(Message).where(Message.run_id == run_id, Message.state == MessageState.FAILED).values(next_attempt_at=utcnow()))


def cancel_open(session: Session, run_id: int) -> None:
    """Whatever of a cancelled run is not sent and not held by a live worker is suppressed."""
    now = utcnow()
    expired_claim = (Message.state == MessageState.CLAIMED) & (Message.lease_until < now)
    session.execute(
        update(Message)
        .where(Message.run_id == run_id, Message.state.in_((MessageState.PENDING, MessageState.FAILED, MessageState.DEFERRED)) | expired_claim)
        .values(state=MessageState.SUPPRESSED, reason="run cancelled", claimed_by=None, lease_until=None, updated_at=now)
    )


# --------------------------------------------------------------------------- a worker's claims


def hold(session: Session, ids: Sequence[int], identity: str, lease: dt.timedelta) -> set[int]:
    """Renew the lease of those of ``ids`` this worker still holds; returns them (a claim
    taken over after its lease ended, or a cancelled run's, is not held any more)."""
    return set(
        session.scalars(
            update(Message)
            .where(Message.id.in_(list(ids)), Message.state == MessageState.CLAIMED, Message.claimed_by == identity)
            .values(lease_until=utcnow() + lease)
            .returning(Message.id)
        )
    )


def renew_leases(engine: Engine, run_id: int, identity: str, lease: dt.timedelta) -> None:
    """Renew every claim the worker holds in the run (its lease keeper thread)."""
    with engine.db.session() as session:
        session.execute(
            update(Message)
            .where(Message.run_id == run_id, Message.state == MessageState.CLAIMED, Message.claimed_by == identity)
            .values(lease_until=utcnow() + lease)
        )


def record_outcomes(engine: Engine, identity: str, outcomes: Sequence[tuple[int, dict[str, Any], dict | None]]) -> set[int]:
    """Write outcomes ``(message id, values, archive index entry or None)`` in one
    transaction, each only while this worker still holds the claim (the rows are locked
    first, so no other worker takes one meanwhile), with the archive index entries of the
    documents sent. Returns the ids recorded."""
    now = utcnow()
    table = Message.__table__
    with engine.db.session() as session:
        held = set(
            session.scalars(
                select(Message.id)
                .where(Message.id.in_([o[0] for o in outcomes]), Message.state == MessageState.CLAIMED, Message.claimed_by == identity)
                .with_for_update()
            )
        )
        mine = [o for o in outcomes if o[0] in held]
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for message_id, values, _ in mine:
            row = {**values, "claimed_by": None, "lease_until": None, "updated_at": now}
            by_columns.setdefault(tuple(sorted(row)), []).append({**row, "_id": message_id})
        for rows in by_columns.values():
            session.execute(
                update(table).where(table.c.id == bindparam("_id"), table.c.state == MessageState.CLAIMED,
                                    table.c.claimed_by == identity),
                rows,
            )
        archived = [entry for message_id, _, entry in mine if entry]
        if archived:
            session.execute(delete(ArchivedDocument).where(ArchivedDocument.message_id.in_([e["message_id"] for e in archived])))
            session.execute(insert(ArchivedDocument), archived)
        outbound.emit_dead_messages(session, [message_id for message_id, values, _ in mine if values.get("state") == MessageState.DEAD])
    return held


def release(engine: Engine, run_id: int, identity: str, ids: Sequence[int] | None = None) -> None:
    """Give the worker's claims back (all of them, or ``ids``): pending again at once, or
    suppressed when the run was cancelled meanwhile."""
    with engine.db.session() as session:
        cancelled = session.scalar(select(Run.state).where(Run.id == run_id)) == RunState.CANCELLED
        mine = and_(Message.run_id == run_id, Message.state == MessageState.CLAIMED, Message.claimed_by == identity)
        values = {"state": MessageState.SUPPRESSED, "reason": "run cancelled"} if cancelled else {"state": MessageState.PENDING}
        session.execute(
            update(Message)
            .where(mine, Message.id.in_(list(ids)) if ids is not None else true())
            .values(claimed_by=None, lease_until=None, updated_at=utcnow(), **values)
        )
