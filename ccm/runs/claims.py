"""Claims on the outbox: a worker (``host:pid``) takes a chunk of a run's messages with a
lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's writes are serialised), and the
claims of a process that died on this host are freed at once by ``ccm runs resume``.
"""
from __future__ import annotations

import datetime as dt
import os
import socket

from sqlalchemy import and_, or_, select, update

from ccm.engine import Engine
from ccm.models import Message, Run, utcnow


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
    host = socket.gethostname()
    freed = 0
    with engine.db.session() as session:
        holders = session.scalars(
            select(Message.claimed_by).where(Message.run_id == run_id, Message.state == "claimed").distinct()
        )
        for holder in list(holders):
            name, _, pid = (holder or "").rpartition(":")
            if name == host and pid.isdigit() and not _alive(int(pid)):
                result = session.execute(
                    update(Message)
                    .where(Message.run_id == run_id, Message.state == "claimed", Message.claimed_by == holder)
                    .values(state="pending", claimed_by=None, lease_until=None)
                )
                freed += result.rowcount
    return freed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
