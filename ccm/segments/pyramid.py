"""The audience as marketers read it: the customer pyramid (value tiers), ABC codes and
lifecycle stages with their customers and spend, and how customers moved between them
since the period before (``ccm.segments.history``)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ccm.models import Customer
from ccm.models.segments import CustomerMetrics
from ccm.segments.computed import STAGES, TIERS
from ccm.segments.history import moves, periods

ABC = ("A", "B", "C")
# the field of the customer and its values in order
DIMENSIONS = {"tier": (Customer.value_tier, TIERS), "abc": (Customer.abc_code, ABC), "stage": (Customer.lifecycle_stage, STAGES)}


def audience_overview(session: Session) -> dict[str, Any]:
    """``{"customers", "period", "previous_period", "tier"|"abc"|"stage": {"groups": [{"value",
    "customers", "spend"}], "moves": {"from": {"to": n}}}}``; spend is the tier period's
    charges (``customer_metrics.spend``); customers not refreshed yet are left out, and a
    customer without a period before moves from None."""
    period, previous = periods(session)
    overview: dict[str, Any] = {
        "customers": session.scalar(select(func.count()).select_from(Customer).where(Customer.value_tier.is_not(None))) or 0,
        "period": period, "previous_period": previous,
    }
    for name, (column, values) in DIMENSIONS.items():
        overview[name] = {"groups": _groups(session, column, values), "moves": _moves(session, name, values, previous)}
    return overview


def _groups(session: Session, column: Any, values: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(column, func.count(), func.sum(CustomerMetrics.spend))
        .select_from(Customer).outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
        .where(column.is_not(None)).group_by(column)
    ).all()
    found = {value: (count, spend) for value, count, spend in rows}
    return [{"value": value, "customers": found.get(value, (0, None))[0], "spend": found.get(value, (0, None))[1] or Decimal("0")}
            for value in values]


def _moves(session: Session, name: str, values: tuple[str, ...], previous: str | None) -> dict[str | None, dict[str, int]]:
    table: dict[str | None, dict[str, int]] = {value: {to: 0 for to in values} for value in (*values, None)}
    for source, target, count in moves(session, name, previous):
        table.setdefault(source, {to: 0 for to in values})[target] = count
    return table
