"""Claims on the outbox: a worker (``host:pid:start``) takes a chunk of a run's messages
with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's writes are serialised),
renewed while it lives (``deliver.LeaseKeeper``), and the claims of a process that died on
this host are freed at once by ``ccm runs resume``; those of another host when their lease
ends.

Whether a process is alive is never ``os.kill(pid, 0)``: a zombie (killed, not yet reaped)
answers it, and so does an unrelated process that got the same PID. An identity names the
process's start time too, and a process counts as alive only when it exists, is not a
zombie and started at that time (psutil).
"""
from __future__ import annotations

import datetime as dt
import functools
import os
import socket

import psutil

from sqlalchemy import and_, or_, select, update

from ccm.engine import Engine
from ccm.models import Message, Run, utcnow


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
