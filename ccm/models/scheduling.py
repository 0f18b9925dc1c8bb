"""Records of the scheduler: schedules as data, every execution of one, the lease that makes
one scheduler process the active one, and APScheduler's own job table (created by our
migrations, so the schema stays in one place)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Table, Text, Unicode, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ccm.models import Base, utcnow

JOBS = ("campaign", "statement", "reminders", "segments-refresh", "retry-sweeper")
BUILT_IN_SWEEPER = "ccm-retry-sweeper"  # the name the built-in sweeper's executions are recorded under (no schedule)


class Schedule(Base):
    """When to do what: ``job`` with a cron expression (or every N seconds) in a time zone."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    job: Mapped[str] = mapped_column(String(30))  # one of JOBS
    communication: Mapped[str | None] = mapped_column(String(100))
    cron: Mapped[str | None] = mapped_column(String(100))
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # audience, local_time, period, days_before...
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# running: being performed (by ``holder``, while its lease is renewed); completed, failed;
# missed: due more than the misfire grace ago, not run; coalesced: passed over while no
# scheduler ran and covered by the one run for the latest missed time; skipped: due while
# the schedule's previous execution still ran (max_instances=1), not run.
EXECUTION_STATES = ("running", "completed", "failed", "missed", "coalesced", "skipped")


class ScheduleRun(Base):
    """One execution of a schedule: planned for ``fire_time``, when it ran, what it made.
    Unique per schedule and fire time, so no fire time is ever executed twice. The history
    outlives its schedule: a removed schedule's executions keep its name (``schedule_id``
    becomes NULL); the built-in retry sweeper's have no schedule at all."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "fire_time"), Index("ix_schedule_runs_started", "started_at"),
                      Index("ix_schedule_runs_name", "schedule_name", "fire_time"))

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id", ondelete="SET NULL"))
    schedule_name: Mapped[str] = mapped_column(String(100))  # kept when the schedule is removed
    fire_time: Mapped[dt.datetime] = mapped_column(DateTime)  # naive UTC: when it was due
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(12), default="running")  # one of EXECUTION_STATES
    run_id: Mapped[int | None] = mapped_column(Integer)  # the last run it made
    run_ids: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")  # every run it made (reminders: one per date)
    summary: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str] = mapped_column(String(100))  # host:pid:nonce of the scheduler that ran it
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)  # database clock; renewed while it runs


class SchedulerLease(Base):
    """Who is the active scheduler, until when (renewed while it lives)."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    acquired_at: Mapped[dt.datetime] = mapped_column(DateTime)


# APScheduler's SQLAlchemyJobStore table, exactly as it defines it.
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
