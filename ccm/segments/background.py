"""Segment refreshes started from the console: the computed fields and the segment (with
the segments it uses) recomputed in a daemon thread of the server process, never inside
the request (on a large database a refresh takes minutes). The page polls the state kept
here; the refresh is audited as its requester's when it ends. One refresh per segment at a
time in a process: asking again while one runs returns the running one.

If the process dies meanwhile, the refresh is simply not done (its transaction is rolled
back): the segment keeps its previous members and count, and can be refreshed again.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

from ccm.models import utcnow
from ccm.segments.service import get_segment, refresh
from ccm.staff import record
from ccm.wiring import Engine

log = logging.getLogger(__name__)


@dataclass
class Refreshing:
    name: str
    actor: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # why it failed, in the engine's words (no customer data)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    @property
    def members(self) -> int | None:
        return self.counts.get(self.name)


_jobs: dict[str, Refreshing] = {}
_lock = threading.Lock()


def start_refresh(engine: Engine, name: str, actor: str) -> tuple[Refreshing, bool]:
    """(the refresh of ``name``, whether this call started it); LookupError or
    SegmentError for a segment that does not exist."""
    with engine.db.reader() as session:
        get_segment(session, name)
    with _lock:
        job = _jobs.get(name)
        if job is not None and job.running:
            return job, False
        job = _jobs[name] = Refreshing(name, actor, utcnow())
    threading.Thread(target=_refresh, args=(engine, job), name=f"segment-refresh-{name}", daemon=True).start()
    return job, True


def _refresh(engine: Engine, job: Refreshing) -> None:
    try:
        with engine.db.session() as session:
            job.counts = refresh(session, engine.settings, job.name).counts
        with engine.db.session() as session:
            record(session, job.actor, "segment.refresh", "segment", job.name, counts=job.counts, via="console")
    except Exception as exc:  # kept for the page; the segment keeps its previous members
        job.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        log.error("segment %s: refresh failed (%s)", job.name, type(exc).__name__, exc_info=True)
    finally:
        job.finished_at = utcnow()
        job.done.set()


def refresh_state(name: str) -> Refreshing | None:
    """The latest refresh of ``name`` this process started, running or ended."""
    with _lock:
        return _jobs.get(name)


def wait_refresh(name: str, timeout: float | None = None) -> bool:
    """Wait for this process's refresh of ``name`` to end; True when none runs."""
    job = refresh_state(name)
    return job is None or job.done.wait(timeout)
