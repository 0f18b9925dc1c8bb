"""After an erasure, the old values out of the database's files as far as the database can.

SQLite (every connection runs with ``secure_delete``, ``ccm.db``): deleted and overwritten
values are zeroed in the pages written, but until a checkpoint the write-ahead log still
holds the pages as they were. A ``wal_checkpoint(TRUNCATE)`` copies the new pages into the
main file and empties the log; it waits (the busy timeout) for other processes' readers,
and a checkpoint that cannot finish is retried, then reported.

PostgreSQL: an update or delete leaves the old row version (a dead tuple) in the table
until it is vacuumed; ``VACUUM`` of the touched tables (outside a transaction) removes
them and their index entries, making their space free for reuse. It does not overwrite
that space, and the server's write-ahead log, replicas and backups keep old versions
until they are recycled: README, "Erasure".
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy.exc import DBAPIError

from ccm.db import Database

CHECKPOINT_TRIES = 5


def scrub(db: Database, tables: Iterable[str]) -> str:
    """Clean the database's files after an erasure; returns what was done, for the report."""
    if db.is_sqlite:
        return _checkpoint(db)
    names = ", ".join(sorted(set(tables)))
    try:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"VACUUM {names}")
    except DBAPIError as exc:  # e.g. not the tables' owner: the erasure itself is done, say what is left
        first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        return f"PostgreSQL: VACUUM failed ({first}): dead rows stay until you run VACUUM {names} as the tables' owner"
    return f"PostgreSQL: VACUUM of {names}"


def _checkpoint(db: Database) -> str:
    for attempt in range(CHECKPOINT_TRIES):
        raw = db.engine.raw_connection()  # no transaction: a checkpoint cannot run inside one
        try:
            busy, _frames, _copied = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.close()
        if not busy:
            return "SQLite: secure_delete on; write-ahead log checkpointed into the main file and emptied"
        time.sleep(0.2 * (attempt + 1))
    return ("SQLite: secure_delete on, but the write-ahead log could NOT be emptied (other processes kept reading): "
            "old values stay in it until a checkpoint empties it; once the engine is idle run "
            "sqlite3 DATABASE 'PRAGMA wal_checkpoint(TRUNCATE)'")
