"""Imports as jobs: a customer file or a billing feed handed over whole (by another system,
through the API) is kept in a folder of its own, ``<var_dir>/imports/<job id>/``, and
imported in the background with every check of ``ccm customers import`` and ``ccm feed
import``. The job keeps its progress (lines read of the file's lines), its report and its
rejects file (file, line, field, reason, raw), so the caller can follow it and fetch what
was refused.

Importing is an upsert by key, so a job taken up again after its process died (``restart``,
or the active ``ccm scheduler`` by itself) imports the file once more and writes only what
the first try had not.
"""
from __future__ import annotations

import csv
import logging
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from sqlalchemy import delete, update

from ccm.db import Database
from ccm.imports.customers import CUSTOMER_REQUIRED, import_customers
from ccm.imports.feed import FEED_CSV_COLUMNS, import_feed
from ccm.imports.files import ImportFileError, ImportReport, _check_readable, _file_format, _open_text, _read_csv
from ccm.imports.uploads import safe_name
from ccm.models import utcnow
from ccm.models.imports import ImportJob

log = logging.getLogger(__name__)

IMPORTERS: dict[str, Callable[..., ImportReport]] = {"customers": import_customers, "feed": import_feed}
CSV_REQUIRED = {"customers": CUSTOMER_REQUIRED, "feed": FEED_CSV_COLUMNS}
FORMATS = ("csv", "jsonl", "csv.gz", "jsonl.gz")
PROGRESS_SECONDS = 1.0  # the job's count of lines read is written about this often


class ImportRefused(ValueError):
    """The file cannot be imported at all (not UTF-8, empty, a format we do not read); the
    message says why, naming the file as the caller named it."""


def jobs_root(var_dir: Path) -> Path:
    return Path(var_dir) / "imports"


def job_folder(var_dir: Path, job_id: int) -> Path:
    return jobs_root(var_dir) / str(job_id)


def create_job(db: Database, var_dir: Path, kind: str, fmt: str, name: str, stream: BinaryIO, *, created_by: str) -> int:
    """Keep the file read from ``stream`` as a new job of ``kind`` (queued); ImportRefused,
    and nothing kept, when it cannot be read at all. ``name`` is how reports name it."""
    if kind not in IMPORTERS:
        raise ValueError(f"no such import: {kind}")
    if fmt not in FORMATS:
        raise ImportRefused(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    shown = safe_name(name or kind)
    job_name = f"{shown.split('.', 1)[0] or kind}.{fmt}"  # the name given, its extension the format's
    with db.session() as session:
        job = ImportJob(kind=kind, file_name=job_name, state="queued", created_by=created_by[:200], created_at=utcnow())
        session.add(job)
        session.flush()
        job_id = job.id
    folder = job_folder(var_dir, job_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / job_name
    try:
        with path.open("wb") as fh:
            shutil.copyfileobj(stream, fh)  # a body over the limit, or a client gone, stops here
        if path.stat().st_size == 0:
            raise ImportFileError(f"{path}: the file is empty")
        fmt_read, gz = _file_format(path)
        _check_readable(path, gz)
        if fmt_read == "csv":  # a header without the required columns: refused now, not in the background
            with _open_text(path, gz, fmt_read) as fh:
                _read_csv(path, fh, CSV_REQUIRED[kind], lambda _lines: None)
    except BaseException as exc:  # nothing is kept of a file not taken
        shutil.rmtree(folder, ignore_errors=True)
        with db.session() as session:
            session.execute(delete(ImportJob).where(ImportJob.id == job_id))
        if isinstance(exc, ImportFileError):
            raise ImportRefused(_printable(str(exc).replace(str(path), job_name))) from None
        raise
    return job_id


class _JobProgress:
    """The import's progress, written to its job row about once a second."""

    def __init__(self, db: Database, job_id: int, total: int) -> None:
        self.db, self.job_id, self.done = db, job_id, 0
        self.written_at = time.monotonic()
        self._write(lines_total=total, lines_done=0)

    def advance(self, lines: int) -> None:
        self.done += lines
        if time.monotonic() - self.written_at >= PROGRESS_SECONDS:
            self._write(lines_done=self.done)

    def close(self) -> None:
        self._write(lines_done=self.done)

    def _write(self, **values: Any) -> None:
        with self.db.session() as session:
            session.execute(update(ImportJob).where(ImportJob.id == self.job_id).values(**values))
        self.written_at = time.monotonic()


def run_job(db: Database, var_dir: Path, job_id: int, *, owner: str) -> str:
    """Import the job's file now, in this thread; returns its final state."""
    with db.session() as session:
        job = session.get(ImportJob, job_id)
        kind, shown = job.kind, job.file_name
        job.state, job.owner, job.started_at, job.finished_at, job.error = "running", owner[:200], utcnow(), None, None
    folder = job_folder(var_dir, job_id)
    path, rejects = folder / shown, folder / "rejects"
    try:
        report = IMPORTERS[kind](db, path, rejects_dir=rejects, progress=lambda total: _JobProgress(db, job_id, total))
    except ImportFileError as exc:
        return _end(db, job_id, state="failed", error=str(exc).replace(str(path), shown)[:1000])
    except Exception as exc:
        log.error("import job %s stopped by an error", job_id, exc_info=True)
        return _end(db, job_id, state="failed", error=f"stopped by an error: {type(exc).__name__}; its rows so far are kept"[:1000])
    summary = {key: value for key, value in asdict(report).items() if key not in ("file", "rejects_path")}
    summary["file"] = shown
    return _end(db, job_id, state="completed", report=summary, rejects_path=report.rejects_path,
                lines_done=ImportJob.lines_total)  # every line read (the header is not counted on the way)


def _printable(text: str) -> str:
    """Text from a file's content (a header's names in an error) without control characters
    (PostgreSQL keeps no NUL)."""
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def _end(db: Database, job_id: int, **values: Any) -> str:
    if values.get("error"):
        values["error"] = _printable(values["error"])
    if values.get("report"):
        values["report"]["ignored_columns"] = [_printable(name) for name in values["report"]["ignored_columns"]]
    with db.session() as session:
        session.execute(update(ImportJob).where(ImportJob.id == job_id).values(owner=None, finished_at=utcnow(), **values))
    return values["state"]


def claim_job(db: Database, job_id: int, state: str, owner_before: str | None, owner: str) -> bool:
    """Take a job for ``owner`` if it is still as it was seen (``state``, ``owner_before``):
    of two processes taking up the same interrupted job, one gets it."""
    with db.session() as session:
        taken = session.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.state == state,
                                                        ImportJob.owner.is_(None) if owner_before is None else ImportJob.owner == owner_before)
                                .values(state="running", owner=owner[:200])).rowcount
    return taken == 1


def start_job(db: Database, var_dir: Path, job_id: int, *, owner: str) -> threading.Thread:
    """Import the job's file in a background thread of this process."""
    thread = threading.Thread(target=run_job, args=(db, var_dir, job_id), kwargs={"owner": owner}, name=f"import-{job_id}",
                              daemon=True)
    thread.start()
    return thread


def rejects_of(var_dir: Path, job: ImportJob) -> Iterator[list[str]] | None:
    """The rows of the job's rejects file (a header, then file, line, field, reason, raw),
    the file named as the caller named it; None when nothing was rejected. Only ever a file
    inside the job's own folder is read."""
    if not job.rejects_path:
        return None
    folder = (job_folder(var_dir, job.id) / "rejects").resolve()
    path = (folder / Path(job.rejects_path).name).resolve()
    if path.parent != folder or not path.is_file():
        return None

    def rows() -> Iterator[list[str]]:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for number, row in enumerate(csv.reader(fh)):
                yield row if number == 0 or not row else [job.file_name, *row[1:]]

    return rows()
