"""How rules see segments: ``in_segment("name")`` reads the materialised membership."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from ccm.models import Customer
from ccm.models.segments import Segment, SegmentMember


def segment_names(session: Session) -> list[str]:
    return list(session.scalars(select(Segment.name).order_by(Segment.name)))


def segment_clause(session: Session) -> Callable[[str], ColumnElement]:
    """``name -> condition`` over ``customers`` for the segments of this database."""
    ids = dict(session.execute(select(Segment.name, Segment.id)).all())

    def member_of(name: str) -> ColumnElement:
        if name not in ids:
            raise LookupError(f"no such segment: {name}")
        return exists(
            select(SegmentMember.customer_id).where(SegmentMember.segment_id == ids[name], SegmentMember.customer_id == Customer.id)
        )

    return member_of
