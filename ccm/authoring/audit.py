"""The audit log: one line per action on a template (who, what, when, which version).

Details hold states, dates, counts and names of seed lists, never customer data.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.models.authoring import AuditLog
from ccm.models import utcnow


def record(session: Session, actor: str, action: str, name: str, version: int | None = None,
           *, object_type: str = "template", **details: Any) -> AuditLog:
    entry = AuditLog(at=utcnow(), actor=actor, action=action, object_type=object_type, object_name=name,
                     version=version, details={k: v for k, v in details.items() if v is not None})
    session.add(entry)
    return entry


def history(session: Session, name: str, *, object_type: str = "template") -> list[AuditLog]:
    """Every action on ``name``, oldest first."""
    return list(session.scalars(
        select(AuditLog).where(AuditLog.object_type == object_type, AuditLog.object_name == name).order_by(AuditLog.id)
    ))


def last_actor(session: Session, name: str, version: int, action: str) -> str | None:
    """Who last did ``action`` (e.g. submit) on a version."""
    return session.scalar(
        select(AuditLog.actor)
        .where(AuditLog.object_type == "template", AuditLog.object_name == name, AuditLog.version == version,
               AuditLog.action == action)
        .order_by(AuditLog.id.desc())
        .limit(1)
    )


def actors(session: Session, name: str, version: int, actions: tuple[str, ...]) -> set[str]:
    """Everyone who did any of ``actions`` on a version (e.g. its makers: create, edit, submit)."""
    return set(
        session.scalars(
            select(AuditLog.actor).where(
                AuditLog.object_type == "template", AuditLog.object_name == name, AuditLog.version == version,
                AuditLog.action.in_(actions),
            )
        )
    )


def as_json(entry: AuditLog) -> dict[str, Any]:
    return {"at": entry.at.isoformat(timespec="seconds"), "actor": entry.actor, "action": entry.action,
            "object": entry.object_name, "version": entry.version, "details": entry.details}
