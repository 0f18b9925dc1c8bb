"""Imports handed over as files (through the API) and done in the background: the job, its
progress and its report. The rows themselves go where ``ccm customers import`` and ``ccm
feed import`` put them; rejected rows go to the job's rejects file."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ccm.models import Base, utcnow

IMPORT_KINDS = ("customers", "feed")
# queued: kept, not started; running: importing (``owner`` is the process); completed: every
# row imported or rejected (``report``); failed: the file could not be read or an error
# stopped it (``error``). A job left running by a process that died is shown "interrupted".
IMPORT_STATES = ("queued", "running", "completed", "failed")


class ImportJob(Base):
    """One file to import. ``file_name`` is the name the caller gave (shown in the report);
    the copy is kept under that name in ``<var>/imports/<id>/``; ``rejects_path`` is the rejects
    file, if any."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # one of IMPORT_KINDS
    file_name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10), default="queued")  # one of IMPORT_STATES
    owner: Mapped[str | None] = mapped_column(String(200))
    lines_total: Mapped[int] = mapped_column(Integer, default=0)
    lines_done: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any] | None] = mapped_column()
    rejects_path: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
