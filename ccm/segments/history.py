"""The computed fields period by period, kept so the studio can show how customers moved
between tiers, ABC codes and lifecycle stages.

Each refresh records every customer's tier, ABC code and stage for its reference period
in ``customer_periods`` (refreshing the same period again replaces that period's rows);
the period before is the latest recorded one before it. A customer erased goes with the
rows (the foreign key cascades); a re-import of the customers keeps them.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.orm import Session, aliased

from ccm.models import Customer
from ccm.models.segments import CustomerPeriod

COLUMNS = {"tier": "value_tier", "abc": "abc_code", "stage": "lifecycle_stage"}


def record_period(session: Session, reference: str) -> None:
    """After the computed fields were recomputed: they are the customers' values of ``reference``."""
    session.execute(delete(CustomerPeriod).where(CustomerPeriod.period == reference))
    session.execute(insert(CustomerPeriod).from_select(
        ["customer_id", "period", "value_tier", "abc_code", "lifecycle_stage"],
        select(Customer.id, func.cast(reference, CustomerPeriod.period.type), Customer.value_tier, Customer.abc_code,
               Customer.lifecycle_stage).where(Customer.value_tier.is_not(None))))


def periods(session: Session) -> tuple[str | None, str | None]:
    """(the latest recorded period, the one before it)."""
    latest = session.scalar(select(func.max(CustomerPeriod.period)))
    before = session.scalar(select(func.max(CustomerPeriod.period)).where(CustomerPeriod.period < latest)) if latest else None
    return latest, before


def moves(session: Session, key: str, previous: str | None) -> list[tuple[str | None, str, int]]:
    """(value in ``previous``, value now, customers) for ``key`` (tier, abc or stage) over
    the customers with a value now; None: not known in ``previous`` (a new customer, or no
    period before)."""
    now = getattr(Customer, COLUMNS[key])
    before = aliased(CustomerPeriod)
    joined = before.period == previous if previous is not None else before.period.is_(None)
    return [(source, target, count) for source, target, count in session.execute(
        select(getattr(before, COLUMNS[key]), now, func.count())
        .select_from(Customer).outerjoin(before, and_(before.customer_id == Customer.id, joined))
        .where(now.is_not(None)).group_by(getattr(before, COLUMNS[key]), now))]


def customer_history(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """A customer's recorded periods, latest first: ``{"period", "tier", "abc", "stage"}``."""
    rows = session.scalars(select(CustomerPeriod).where(CustomerPeriod.customer_id == customer_id)
                           .order_by(CustomerPeriod.period.desc()))
    return [{"period": row.period, "tier": row.value_tier, "abc": row.abc_code, "stage": row.lifecycle_stage} for row in rows]
