"""Database access: one engine per process, sessions per unit of work, migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and every
transaction starts with ``BEGIN IMMEDIATE`` so two processes never deadlock upgrading a
read lock to a write lock; PostgreSQL needs none of this. Every SQLite connection runs with
``secure_delete``: deleted and overwritten values are zeroed, not left in free space (an
erased customer's old values must not stay in the file, ``ccm.feedback.erase_db``).
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "ccm_read_only"  # execution option: a transaction that only reads (no write lock on SQLite)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):  # type: ignore[no-untyped-def]
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class DatabaseLocationError(OSError):
    """The database cannot be opened or made where the URL points; the message says where."""


class Database:
    """An engine and a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        # SQLite has one writer at a time: threads of this process queue here for it, instead
        # of polling the database's lock with the busy timeout's growing sleeps (a web
        # process's request threads and a worker's threads would otherwise wait up to 100 ms
        # each time they meet). Other processes still wait by the busy timeout.
        self._writer = threading.RLock()
        options = {"pool_pre_ping": True} if self.url.get_backend_name() != "sqlite" else {}
        self.engine = create_engine(self._opened_url(), **options)
        if self.is_sqlite:
            _prepare_sqlite(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def masked_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed at the end of the block, rolled back on error."""
        if not self.is_sqlite:
            with self.sessions() as session, session.begin():
                yield session
            return
        with self._writer, self.sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def reader(self) -> Iterator[Session]:
        """A session for reading only: on SQLite it takes no write lock, so progress polls
        and reports never hold up the workers."""
        with self.sessions() as session:
            session.connection(execution_options={READ_ONLY: True})
            yield session  # closing the session ends its transaction; loaded objects stay readable

    def _opened_url(self) -> URL:
        """The URL connections use: an SQLite file is opened read-write but never created
        (``mode=rw``), so a command pointed at a mistyped path fails instead of leaving an
        empty database there; ``upgrade`` creates it."""
        if self.file is None:
            return self.url
        return self.url.set(database=f"file:{quote(str(self.file.resolve()))}", query={**self.url.query, "mode": "rw", "uri": "true"})

    @property
    def file(self) -> Path | None:
        """The SQLite database's file (None for PostgreSQL or an in-memory database)."""
        if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            return Path(self.url.database)
        return None

    def exists(self) -> bool:
        """Whether there is a database to open: for SQLite, its file (opening a missing one
        would create it, empty, wherever a typo points); a server database is asked."""
        return self.file.is_file() if self.file is not None else True

    def upgrade(self, revision: str = "heads") -> None:
        """Create or upgrade the schema with Alembic (to every head: features add their own
        migration branches, merged when they meet). Only this makes an SQLite file and its
        folder."""
        from alembic import command

        self.create_file()
        command.upgrade(self.alembic_config(), revision)

    def create_file(self) -> None:
        """Make the SQLite database's file (and its folder) if there is none: ``upgrade``
        does, and so may a tool that makes its tables itself (benchmarks)."""
        if self.file is not None and not self.file.exists():
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                sqlite3.connect(self.file).close()  # an empty database file, to be opened read-write
            except (FileExistsError, NotADirectoryError):
                raise DatabaseLocationError(f"cannot make the database {self.file}: a part of its folder is a file") from None
            except (OSError, sqlite3.Error) as exc:
                raise DatabaseLocationError(f"cannot make the database {self.file}: {getattr(exc, 'strerror', None) or exc}") from None

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
        return ",".join(sorted(heads)) or None

    def alembic_config(self):  # type: ignore[no-untyped-def]
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = self.engine
        return config

    def dispose(self) -> None:
        self.engine.dispose()


def dialect_insert(bind: Session | Database) -> Callable[..., Insert]:
    """The ``insert`` of the database behind a session or a Database: SQLite's and
    PostgreSQL's both take ``ON CONFLICT`` (``on_conflict_do_nothing``/``_do_update``)."""
    sqlite = bind.is_sqlite if isinstance(bind, Database) else bind.get_bind().dialect.name == "sqlite"
    return sqlite_insert if sqlite else pg_insert


def insert_or_ignore(bind: Session | Database, entity: Any, *keys: Any) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``: a row whose keys exist is left as it is."""
    return dialect_insert(bind)(entity).on_conflict_do_nothing(index_elements=list(keys))
