"""A rule checked as it is typed: the error at its position, or how many customers it
selects now and a few of them, bounded in time on large databases.

The count reads at most ``cap + 1`` matching rows (a LIMIT probe), so a rule selecting
millions stops early and says "more than cap". Each statement also has a time limit
(PostgreSQL: ``SET LOCAL statement_timeout``; SQLite: a progress handler that interrupts
it); when the limit is hit, PostgreSQL's planner estimate is given instead, marked as an
estimate, and SQLite says the count was not finished.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ccm.models import Customer
from ccm.rules import Rule, RuleError
from ccm.segments.membership import segment_clause, segment_names

CAP = 100_000
SAMPLE = 20
TIMEOUT_MS = 2000
PROGRESS_STEPS = 1000  # SQLite checks the time every this many virtual machine steps


@dataclass(frozen=True)
class LiveCount:
    """What a rule selects now. ``error`` is set instead when the rule does not parse;
    ``count`` is None when counting ran out of time and no estimate exists."""

    expression: str
    error: RuleError | None = None
    count: int | None = None
    capped: bool = False  # more than ``cap`` customers: ``count`` is the cap
    estimate: bool = False  # the planner's estimate, the exact count took too long
    sample: list[dict[str, Any]] = field(default_factory=list)
    cap: int = CAP


def live_count(session: Session, expression: str, *, segment: str | None = None, cap: int = CAP, sample: int = SAMPLE,
               timeout_ms: int = TIMEOUT_MS, today: dt.date | None = None) -> LiveCount:
    """Check ``expression`` (as the rule of segment ``segment`` when given) and count its
    members, reading at most ``cap + 1`` rows and spending about ``timeout_ms`` per
    statement. Nothing is written."""
    try:
        rule = Rule.parse(expression, segments={*segment_names(session), *([segment] if segment else [])})
        if segment and segment in rule.segments:
            raise RuleError(f"segment {segment!r} cannot use itself", None, expression)
        condition = rule.to_sql(session.get_bind().dialect.name, today=today, segment_clause=segment_clause(session))
    except (RuleError, LookupError) as exc:
        error = exc if isinstance(exc, RuleError) else RuleError(str(exc).strip("'\""), None, expression)
        return LiveCount(expression, error=error, cap=cap)
    probe = select(Customer.id).where(condition).limit(cap + 1).subquery()
    members = (select(Customer.external_id, Customer.name, Customer.value_tier, Customer.lifecycle_stage)
               .where(condition).order_by(Customer.id).limit(sample))
    try:
        with _time_limit(session, timeout_ms):
            count = session.scalar(select(func.count()).select_from(probe)) or 0
        with _time_limit(session, timeout_ms):
            rows = [dict(row._mapping) for row in session.execute(members)]
    except OperationalError:
        session.rollback()
        return LiveCount(expression, count=_estimate(session, condition), estimate=True, cap=cap)
    capped = count > cap
    return LiveCount(expression, count=min(count, cap), capped=capped, sample=rows, cap=cap)


@contextmanager
def _time_limit(session: Session, timeout_ms: int) -> Iterator[None]:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {int(timeout_ms)}"))
        yield
        session.execute(text("SET LOCAL statement_timeout = 0"))
        return
    raw = session.connection().connection.driver_connection
    deadline = time.monotonic() + timeout_ms / 1000
    raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


def _estimate(session: Session, condition: Any) -> int | None:
    """PostgreSQL's planner estimate of the rows ``condition`` selects (None elsewhere)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    query = select(Customer.id).where(condition)
    compiled = query.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    plan = session.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])
