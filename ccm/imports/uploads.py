"""Billing feeds uploaded by staff (the console's billing desk): each upload is kept in a
folder of its own, ``<var_dir>/uploads/<upload id>/``, holding the file under its own name,
its rejects file (``rejects/``) and the import's report (``report.json``), so the result can
be shown again, and the rejects downloaded, until the folder is cleared.

An upload is imported like ``ccm feed import``: every row is validated, good statements
are stored, bad ones go to the rejects file. Nothing is planned here; starting the cycle
is a separate step, after the results have been seen.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import re
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ccm.db import Database
from ccm.imports.feed import import_feed
from ccm.imports.files import ImportFileError, ImportReport
from ccm.models import FeedRecord

UPLOAD_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
SUFFIXES = (".csv", ".jsonl", ".ndjson", ".csv.gz", ".jsonl.gz", ".ndjson.gz")
MAX_REJECTS_SHOWN = 500


@dataclass(frozen=True)
class Upload:
    """One uploaded feed and what its import found."""

    id: str
    name: str  # the file's name as uploaded (made safe)
    report: ImportReport
    error: str | None = None  # the file could not be read at all: nothing was imported

    @property
    def rejects(self) -> bool:
        return bool(self.report.rejects_path)


@dataclass(frozen=True)
class Reject:
    file: str
    line: int
    field: str
    reason: str


def uploads_root(var_dir: Path) -> Path:
    return Path(var_dir) / "uploads"


def safe_name(filename: str) -> str:
    """The uploaded file's own name, reduced to safe characters (its extension kept)."""
    name = _UNSAFE.sub("_", Path(filename.replace("\\", "/")).name).lstrip(".")[-120:]
    return name or "feed"


def import_upload(db: Database, var_dir: Path, filename: str, stream: BinaryIO) -> Upload:
    """Keep the uploaded file and import it as a billing feed; the report is kept with it.
    A file of the wrong kind or unreadable is an Upload with ``error`` (nothing imported)."""
    upload_id = f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    folder = uploads_root(var_dir) / upload_id
    folder.mkdir(parents=True)
    name = safe_name(filename)
    path = folder / name
    with path.open("wb") as fh:
        shutil.copyfileobj(stream, fh)
    error = None
    try:
        report = import_feed(db, path, rejects_dir=folder / "rejects", progress=False)
    except ImportFileError as exc:
        error = str(exc).replace(str(folder) + "/", "")
        report = ImportReport(file=str(path), kind="feed")
    upload = Upload(upload_id, name, report, error)
    (folder / "report.json").write_text(json.dumps({"name": name, "error": error, "report": asdict(report)}), encoding="utf-8")
    return upload


def load_upload(var_dir: Path, upload_id: str) -> Upload:
    """An earlier upload by its id; LookupError if there is none."""
    if not UPLOAD_ID.match(upload_id):
        raise LookupError(f"no such upload: {upload_id}")
    try:
        data = json.loads((uploads_root(var_dir) / upload_id / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise LookupError(f"no such upload: {upload_id}") from None
    return Upload(upload_id, data["name"], ImportReport(**data["report"]), data.get("error"))


def rejects_file(var_dir: Path, upload: Upload) -> Path | None:
    """The upload's rejects file (CSV: file, line, field, reason, raw), if it has one; only
    ever a file inside the upload's own folder."""
    folder = (uploads_root(var_dir) / upload.id / "rejects").resolve()
    if not upload.report.rejects_path:
        return None
    path = (folder / Path(upload.report.rejects_path).name).resolve()
    return path if path.parent == folder and path.is_file() else None


def read_rejects(var_dir: Path, upload: Upload, limit: int = MAX_REJECTS_SHOWN) -> list[Reject]:
    """The first ``limit`` rows of the upload's rejects file, the file named as uploaded."""
    path = rejects_file(var_dir, upload)
    if path is None:
        return []
    found = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            if len(found) >= limit:
                break
            found.append(Reject(Path(row["file"]).name, int(row["line"]), row["field"], row["reason"]))
    return found


def imported_periods(session: Session) -> list[tuple[str, int]]:
    """Billing periods with statements imported, newest first, with how many."""
    rows = session.execute(select(FeedRecord.period, func.count()).group_by(FeedRecord.period).order_by(FeedRecord.period.desc()))
    return [(period, count) for period, count in rows]


def upload_periods(session: Session, upload: Upload) -> list[str]:
    """The periods of the statements this upload stored (new or changed ones)."""
    return list(session.scalars(select(FeedRecord.period).where(FeedRecord.source_file == upload.name[-255:]).distinct()
                                .order_by(FeedRecord.period.desc())))
