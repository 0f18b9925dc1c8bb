"""Rate limits per channel that hold across every worker process and machine.

Limits are written as the `limits` library parses them, per channel kind in
``[limits]``: ``email = "10/second; 50000/day"``. The counters live where every worker
sees them: by default in the engine's own database (a storage for `limits` backed by the
``rate_counters`` table), or in Redis when ``[limits] storage`` is a ``redis://`` URL.

Over a per-second or per-minute limit a worker waits for the next window; over an hourly or
daily limit the message is deferred until the window resets, never dropped.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Callable

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import case, delete, select
from sqlalchemy.exc import SQLAlchemyError

from ccm.db import Database, dialect_insert
from ccm.models import RateCounter

WAIT_UP_TO_SECONDS = 60  # over a longer window (hour, day) the message is deferred instead of waiting


class DatabaseStorage(Storage):
    """`limits` storage on the engine's database: one atomic upsert per hit."""

    STORAGE_SCHEME = ["ccm-database"]

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        statement = dialect_insert(self.db)(RateCounter).values(key=key, count=amount, expires_at=now + expiry)
        expired = RateCounter.expires_at <= now
        statement = statement.on_conflict_do_update(
            index_elements=[RateCounter.key],
            set_={
                "count": case((expired, statement.excluded.count), else_=RateCounter.count + statement.excluded.count),
                "expires_at": case((expired, statement.excluded.expires_at), else_=RateCounter.expires_at),
            },
        ).returning(RateCounter.count)
        with self.db.session() as session:
            return int(session.execute(statement).scalar_one())

    def _row(self, key: str) -> RateCounter | None:
        with self.db.reader() as session:
            row = session.scalar(select(RateCounter).where(RateCounter.key == key))
        return row if row is not None and row.expires_at > time.time() else None

    def get(self, key: str) -> int:
        row = self._row(key)
        return row.count if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row.expires_at if row else time.time()

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self.db.session() as session:
            return session.execute(delete(RateCounter)).rowcount

    def clear(self, key: str) -> None:
        with self.db.session() as session:
            session.execute(delete(RateCounter).where(RateCounter.key == key))


class ChannelLimits:
    """The configured limits of every channel kind, checked before each send."""

    def __init__(self, settings: dict, db: Database, *, sleep: Callable[[float], None] = time.sleep) -> None:
        config = settings["limits"]
        self.items: dict[str, list[RateLimitItem]] = {
            kind: sorted(parse_many(spec), key=lambda item: item.get_expiry())
            for kind, spec in config.items()
            if kind != "storage" and spec
        }
        storage = config.get("storage") or ""
        self.storage: Storage = storage_from_string(storage) if storage else DatabaseStorage(db)
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.sleep = sleep

    def acquire(self, kind: str, should_stop: Callable[[], bool] = lambda: False) -> dt.datetime | None:
        """Take one message's place under every limit of ``kind``: waits through short
        windows; returns when to try again (naive UTC) if a long window is used up."""
        for item in self.items.get(kind, []):
            while not self.limiter.hit(item, kind):
                reset = self.limiter.get_window_stats(item, kind).reset_time
                if item.get_expiry() > WAIT_UP_TO_SECONDS:
                    return dt.datetime.fromtimestamp(reset, dt.timezone.utc).replace(tzinfo=None)
                if should_stop():
                    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                self.sleep(max(0.01, reset - time.time()))
        return None


