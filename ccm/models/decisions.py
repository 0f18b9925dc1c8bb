"""Decisions: per communication slot an ordered list of rules, versioned like templates."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ccm.models import Base, utcnow


class Decision(Base):
    """What content a slot of a communication gets (``monthly-statement`` / ``statement.insert``)."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("communication", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    communication: Mapped[str] = mapped_column(String(100))
    slot: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, default=1)  # the current version
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    versions: Mapped[list[DecisionVersion]] = relationship(back_populates="decision", order_by="DecisionVersion.version")


class DecisionVersion(Base):
    """An immutable version: ``{"rules": [{"name", "when", "then"}], "default": ...}``."""

    __tablename__ = "decision_versions"
    __table_args__ = (UniqueConstraint("decision_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column()
    author: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    decision: Mapped[Decision] = relationship(back_populates="versions")
