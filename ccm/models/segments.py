"""Records of segments and computed fields: per-customer metrics, segments with their
definition history, materialised membership and counts over time."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ccm.models import Base, utcnow


class CustomerMetrics(Base):
    """What ``ccm segments refresh`` computed for one customer (the inputs of the computed
    fields on ``customers``, kept so rules can use them: ``spend``, ``tenure_months``...)."""

    __tablename__ = "customer_metrics"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    spend: Mapped[Decimal] = mapped_column(default=Decimal("0"))  # charges in the tier period
    spend_recent: Mapped[Decimal] = mapped_column(default=Decimal("0"))  # the recent half of the trend window
    spend_before: Mapped[Decimal] = mapped_column(default=Decimal("0"))  # the half before it
    spend_rank: Mapped[int] = mapped_column(Integer, default=0)  # 1 = highest spend; ties by customer id
    spend_ahead: Mapped[Decimal] = mapped_column(default=Decimal("0"))  # spend of the customers ranked above
    periods_active: Mapped[int] = mapped_column(Integer, default=0)  # periods with charges in the tier period
    last_active_period: Mapped[str | None] = mapped_column(String(7))
    tenure_months: Mapped[int] = mapped_column(Integer, default=0)
    r_score: Mapped[int | None] = mapped_column(Integer)
    f_score: Mapped[int | None] = mapped_column(Integer)
    m_score: Mapped[int | None] = mapped_column(Integer)
    refreshed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)  # the current definition
    expression: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    versions: Mapped[list[SegmentVersion]] = relationship(back_populates="segment", order_by="SegmentVersion.version")


class SegmentVersion(Base):
    """One definition of a segment; a new one is added whenever the expression changes."""

    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    expression: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100), default="cli")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    segment: Mapped[Segment] = relationship(back_populates="versions")


class SegmentMember(Base):
    """Materialised membership, replaced by each refresh of the segment."""

    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_customer", "customer_id"),)

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)


class SegmentCount(Base):
    """The size of a segment at each refresh: counts over time."""

    __tablename__ = "segment_counts"
    __table_args__ = (Index("ix_segment_counts_segment", "segment_id", "refreshed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer)
    refreshed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CustomerPeriod(Base):
    """A customer's computed fields as a refresh left them for one reference period: the
    pyramid tier, ABC code and lifecycle stage, kept period by period so the studio can
    show how customers moved between them (``ccm.segments.history``)."""

    __tablename__ = "customer_periods"
    __table_args__ = (Index("ix_customer_periods_period", "period"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    value_tier: Mapped[str | None] = mapped_column(String(10))
    abc_code: Mapped[str | None] = mapped_column(String(1))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(12))
