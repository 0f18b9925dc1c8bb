"""The audit log of what staff did: who (the signed-in user, or ``shell:<login>`` for the
bootstrap commands run at a shell), when, what action on which object, and what changed.
``details`` hold states, names, counts and before/after values of settings, never a
customer's personal data (a customer is named by their external id).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ccm.models import utcnow
from ccm.models.authoring import AuditLog


def record(session: Session, actor: str, action: str, object_type: str, name: str, version: int | None = None,
           **details: Any) -> AuditLog:
    entry = AuditLog(at=utcnow(), actor=actor[:100], action=action[:40], object_type=object_type[:40], object_name=str(name)[:200],
                     version=version, details={k: v for k, v in details.items() if v is not None})
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None  # a prefix: "signin" finds signin and signin.failed
    object_type: str | None = None
    text: str | None = None  # in the object's name
    since: dt.date | None = None
    until: dt.date | None = None


def search(session: Session, filters: AuditFilter, *, before_id: int | None = None, limit: int = 100) -> list[AuditLog]:
    """The newest entries matching ``filters``, older than ``before_id`` (the next page)."""
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if filters.actor:
        query = query.where(AuditLog.actor == filters.actor)
    if filters.action:
        query = query.where(or_(AuditLog.action == filters.action, AuditLog.action.startswith(filters.action + ".")))
    if filters.object_type:
        query = query.where(AuditLog.object_type == filters.object_type)
    if filters.text:
        query = query.where(func.lower(AuditLog.object_name).contains(filters.text.lower(), autoescape=True))
    if filters.since:
        query = query.where(AuditLog.at >= dt.datetime.combine(filters.since, dt.time()))
    if filters.until:
        query = query.where(AuditLog.at < dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time()))
    if before_id:
        query = query.where(AuditLog.id < before_id)
    return list(session.scalars(query))


def facets(session: Session) -> dict[str, list[str]]:
    """The actors, actions and object types the log holds, for the filter menus."""
    return {
        "actors": list(session.scalars(select(AuditLog.actor).distinct().order_by(AuditLog.actor).limit(500))),
        "actions": list(session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action))),
        "object_types": list(session.scalars(select(AuditLog.object_type).distinct().order_by(AuditLog.object_type))),
    }
