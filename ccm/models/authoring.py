"""Records of the authoring workflow: the audit log.

Template versions themselves live in ``ccm.models`` (``Template``, ``TemplateVersion``);
content blocks are templates of a block kind (``ccm.authoring.store.BLOCK_KINDS``).
Users and roles arrive with the web UI; until then the CLI names the acting user.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ccm.models import Base, utcnow


class AuditLog(Base):
    """Who did what when to which object. ``details`` never holds personal data."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_object", "object_type", "object_name"),
        Index("ix_audit_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40))
    object_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
