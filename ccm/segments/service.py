"""Segments: named rule expressions with their definition history, materialised
membership and counts over time.

Saving checks the expression (syntax, fields, types, segments it names, no cycles), so a
bad rule is rejected with its position before any run sees it. Refreshing recomputes the
computed customer fields first, then each segment in dependency order
(a segment using ``in_segment("x")`` after ``x``), each with one INSERT ... SELECT.
"""
from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from ccm.models import Communication, Customer, utcnow
from ccm.models.campaigns import Campaign
from ccm.models.decisions import Decision, DecisionVersion
from ccm.models.scheduling import Schedule
from ccm.rules import Rule, RuleError
from ccm.segments.computed import RefreshResult, refresh_computed
from ccm.segments.membership import segment_clause, segment_names
from ccm.models.segments import Segment, SegmentCount, SegmentMember, SegmentVersion
from ccm.staff import record

SEGMENT_NAME = re.compile(r"[a-z0-9][a-z0-9_\-]{0,99}")


class SegmentError(ValueError):
    """A segment that cannot be saved or found; the message says why."""


@dataclass(frozen=True)
class Saved:
    segment: Segment
    outcome: str  # created, new version, unchanged


def get_segment(session: Session, name: str) -> Segment:
    segment = session.scalar(select(Segment).where(Segment.name == name))
    if segment is None:
        known = segment_names(session)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(known) or 'none'})"
        raise SegmentError(f"no such segment: {name}{hint}")
    return segment


def save_segment(session: Session, name: str, expression: str, *, description: str | None = None, author: str = "cli") -> Saved:
    """Create a segment, or add a version when its expression changed."""
    if not SEGMENT_NAME.fullmatch(name):
        raise SegmentError(f"segment name {name!r}: use lower-case letters, digits, - and _ (up to 100)")
    existing = session.scalar(select(Segment).where(Segment.name == name))
    rule = Rule.parse(expression, segments={*segment_names(session), name})
    if name in rule.segments:
        raise RuleError(f"segment {name!r} cannot use itself", None, expression)
    _check_no_cycle(session, name, rule)
    now = utcnow()
    if existing is None:
        segment = Segment(name=name, expression=expression, description=description or "", version=1, created_at=now, updated_at=now)
        session.add(segment)
        session.flush()
        session.add(SegmentVersion(segment_id=segment.id, version=1, expression=expression, author=author, created_at=now))
        return Saved(segment, "created")
    if description is not None:
        existing.description = description
    if existing.expression == expression:
        return Saved(existing, "unchanged")
    existing.version += 1
    existing.expression = expression
    existing.updated_at = now
    session.add(SegmentVersion(segment_id=existing.id, version=existing.version, expression=expression, author=author, created_at=now))
    session.flush()
    return Saved(existing, "new version")


def delete_segment(session: Session, name: str, *, actor: str = "cli") -> None:
    """Delete a segment with its versions, members and counts, audited as ``actor``'s.
    SegmentError when there is no such segment, or when something still uses it: another
    segment's rule, a decision's current rules, or the audience of a communication, a
    campaign or a schedule (the message names each)."""
    segment = get_segment(session, name)
    users = segment_users(session, name)
    if users:
        raise SegmentError(f"segment {name} is in use and cannot be deleted: {'; '.join(users)}")
    for table in (SegmentMember, SegmentCount, SegmentVersion):
        session.execute(delete(table).where(table.segment_id == segment.id))
    session.execute(delete(Segment).where(Segment.id == segment.id))
    session.expunge(segment)
    record(session, actor, "segment.delete", "segment", name, segment.version, expression=segment.expression)


def segment_users(session: Session, name: str) -> list[str]:
    """What uses segment ``name``, in words: segments, decisions, communications, campaigns
    and schedules, each named."""
    found = [f"segment {other}" for other, uses in sorted(_dependencies(session).items()) if other != name and name in uses]
    current = session.execute(select(Decision.communication, Decision.slot, DecisionVersion.spec)
                              .join(DecisionVersion, (DecisionVersion.decision_id == Decision.id)
                                    & (DecisionVersion.version == Decision.version))
                              .order_by(Decision.communication, Decision.slot))
    for communication, slot, spec in current:
        rules = (spec or {}).get("rules") or []
        if any(isinstance(rule, dict) and name in Rule.parse(str(rule.get("when", "true"))).segments for rule in rules):
            found.append(f"decision {communication}/{slot}")
    found += [f"communication {c.name}" for c in session.scalars(select(Communication).order_by(Communication.name))
              if (c.config or {}).get("audience") == name]
    found += [f"campaign {c}" for c in session.scalars(select(Campaign.name).where(Campaign.audience == name).order_by(Campaign.name))]
    found += [f"schedule {s.name}" for s in session.scalars(select(Schedule).order_by(Schedule.name))
              if (s.options or {}).get("audience") == name]
    return found


def _dependencies(session: Session) -> dict[str, set[str]]:
    return {s.name: Rule.parse(s.expression).segments for s in session.scalars(select(Segment))}


def _check_no_cycle(session: Session, name: str, rule: Rule) -> None:
    uses = _dependencies(session)
    uses[name] = rule.segments
    seen, stack = set(), list(rule.segments)
    while stack:
        current = stack.pop()
        if current == name:
            raise RuleError(f"segment {name!r} would depend on itself through in_segment()", None, rule.text)
        if current not in seen:
            seen.add(current)
            stack.extend(uses.get(current, ()))


def refresh_order(session: Session, only: str | None = None) -> list[Segment]:
    segments = {s.name: s for s in session.scalars(select(Segment).order_by(Segment.name))}
    uses = _dependencies(session)
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for dependency in sorted(uses.get(name, ())):
            visit(dependency)
        ordered.append(name)

    for name in ([only] if only else segments):
        visit(name)
    return [segments[name] for name in ordered]


def refresh_segment(session: Session, segment: Segment, today: dt.date | None = None) -> int:
    """Replace the membership of ``segment`` and record its count; returns the count."""
    dialect = session.get_bind().dialect.name
    rule = Rule.parse(segment.expression)
    condition = rule.to_sql(dialect, today=today, segment_clause=segment_clause(session))
    session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    members = select(literal(segment.id, Integer).label("segment_id"), Customer.id.label("customer_id")).where(condition)
    session.execute(insert(SegmentMember).from_select(["segment_id", "customer_id"], members))
    count = session.scalar(select(func.count()).select_from(SegmentMember).where(SegmentMember.segment_id == segment.id)) or 0
    now = utcnow()
    session.add(SegmentCount(segment_id=segment.id, version=segment.version, members=count, refreshed_at=now))
    segment.refreshed_at = now
    session.flush()
    return count


@dataclass(frozen=True)
class Refreshed:
    computed: RefreshResult
    counts: dict[str, int]


def refresh(session: Session, settings: dict, name: str | None = None, today: dt.date | None = None) -> Refreshed:
    """Computed fields, then the segment ``name`` (with what it uses) or every segment."""
    if name is not None:
        get_segment(session, name)
    computed = refresh_computed(session, settings)
    counts = {segment.name: refresh_segment(session, segment, today) for segment in refresh_order(session, name)}
    return Refreshed(computed, counts)


def describe(session: Session, segment: Segment, history: int = 10) -> dict[str, Any]:
    counts = session.scalars(
        select(SegmentCount).where(SegmentCount.segment_id == segment.id).order_by(SegmentCount.id.desc()).limit(history)
    ).all()
    rule = Rule.parse(segment.expression)
    return {
        "name": segment.name,
        "description": segment.description,
        "expression": segment.expression,
        "version": segment.version,
        "fields": sorted(rule.fields | ({"attributes"} if rule.uses_attributes else set())),
        "uses_segments": sorted(rule.segments),
        "members": counts[0].members if counts else None,
        "refreshed_at": _iso(segment.refreshed_at),
        "counts": [{"refreshed_at": _iso(c.refreshed_at), "members": c.members, "version": c.version} for c in counts],
        "versions": [
            {"version": v.version, "expression": v.expression, "author": v.author, "created_at": _iso(v.created_at)}
            for v in segment.versions
        ],
    }


def list_segments(session: Session) -> list[dict[str, Any]]:
    latest = (
        select(SegmentCount.segment_id, func.max(SegmentCount.id).label("last")).group_by(SegmentCount.segment_id).subquery()
    )
    rows = session.execute(
        select(Segment, SegmentCount.members)
        .outerjoin(latest, latest.c.segment_id == Segment.id)
        .outerjoin(SegmentCount, SegmentCount.id == latest.c.last)
        .order_by(Segment.name)
    ).all()
    return [
        {"name": s.name, "description": s.description, "version": s.version, "members": members, "refreshed_at": _iso(s.refreshed_at), "expression": s.expression}
        for s, members in rows
    ]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None
