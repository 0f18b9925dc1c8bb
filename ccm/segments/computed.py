"""Computed customer fields in set-based SQL: two statements for the whole table, no
per-customer Python loop (SQLite 3.33+ and PostgreSQL both run UPDATE ... FROM and
window functions).

1. ``customer_metrics`` is rebuilt from ``feed_records``: spend in the last N periods,
   the spend trend, active periods, tenure, the spend rank (ties by customer id) and the
   RFM quintiles (``NTILE(5)``).
2. ``customers`` gets value tier, ABC code, lifecycle stage, RFM from the metrics, and the
   engagement score and last response from the recorded responses (``response_events``),
   with the thresholds of ``[segments]`` in the settings.

The reference period is the latest period in the feed (or this month without a feed).
Each customer's values are kept period by period (``ccm.segments.history``).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, Integer, String, and_, case, cast, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session

from ccm.models import Customer, FeedRecord, utcnow
from ccm.models.feedback import ENGAGEMENT, ResponseEvent
from ccm.models.feedback import ResponseEvent as E
from ccm.models.segments import CustomerMetrics
from ccm.segments.history import record_period

TIERS = ("vip", "key", "ordinary", "small")
STAGES = ("acquisition", "growth", "maturity", "decline", "exit")


@dataclass(frozen=True)
class Thresholds:
    periods: int
    vip_share: float
    key_share: float
    ordinary_share: float
    abc_a_share: float
    abc_b_share: float
    acquisition_months: int
    maturity_months: int
    trend_periods: int
    growth_rise: float
    decline_drop: float
    exit_idle_periods: int
    engagement_days: int

    @classmethod
    def from_settings(cls, settings: dict) -> "Thresholds":
        values = settings["segments"]
        try:
            made = cls(**{name: _KINDS[kind](values[name]) for name, kind in cls.__annotations__.items()})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"[segments] settings: {exc}") from None
        if not 0 <= made.vip_share <= made.key_share <= made.ordinary_share <= 1:
            raise ValueError("[segments] settings: need 0 <= vip_share <= key_share <= ordinary_share <= 1")
        if not 0 <= made.abc_a_share <= made.abc_b_share <= 1:
            raise ValueError("[segments] settings: need 0 <= abc_a_share <= abc_b_share <= 1")
        if made.periods < 1 or made.trend_periods < 1:
            raise ValueError("[segments] settings: periods and trend_periods must be at least 1")
        return made


_KINDS = {"int": int, "float": float}


@dataclass(frozen=True)
class RefreshResult:
    customers: int
    reference_period: str
    tiers: dict[str, int]


def month_index(period: str) -> int:
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def period_of(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _sql_month_index(period: Any) -> Any:
    return cast(func.substr(period, 1, 4), Integer) * 12 + cast(func.substr(period, 6, 2), Integer) - 1


def _created_period(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.to_char(Customer.created_at, "YYYY-MM", type_=String)
    return func.strftime("%Y-%m", Customer.created_at, type_=String)


def _cutoff(count: int, share: float) -> int:
    return math.floor(Decimal(count) * Decimal(str(share)))


def refresh_computed(session: Session, settings: dict) -> RefreshResult:
    """Recompute every customer's computed fields; returns the tier counts."""
    limits = Thresholds.from_settings(settings)
    dialect = session.get_bind().dialect.name
    latest = session.scalar(select(func.max(FeedRecord.period)))
    reference = latest or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    ref = month_index(reference)
    start = period_of(ref - limits.periods + 1)
    recent_start = period_of(ref - limits.trend_periods + 1)
    before_start = period_of(ref - 2 * limits.trend_periods + 1)
    _rebuild_metrics(session, dialect, ref, start, recent_start, before_start)
    customers = session.scalar(select(func.count()).select_from(Customer)) or 0
    _update_customers(session, limits, customers, ref)
    record_period(session, reference)  # kept period by period, for the movements between tiers and stages
    tiers = dict(session.execute(select(Customer.value_tier, func.count()).group_by(Customer.value_tier)).all())
    return RefreshResult(customers=customers, reference_period=reference, tiers={t: tiers.get(t, 0) for t in TIERS})


def _rebuild_metrics(session: Session, dialect: str, ref: int, start: str, recent_start: str, before_start: str) -> None:
    debits, period = FeedRecord.total_debits, FeedRecord.period
    zero = literal(0)
    in_window = period >= start
    per_customer = (
        select(
            Customer.id.label("customer_id"),
            func.coalesce(func.sum(case((in_window, debits), else_=zero)), zero).label("spend"),
            func.coalesce(func.sum(case((period >= recent_start, debits), else_=zero)), zero).label("spend_recent"),
            func.coalesce(func.sum(case((and_(period >= before_start, period < recent_start), debits), else_=zero)), zero).label("spend_before"),
            func.count(func.distinct(case((and_(in_window, debits > 0), period), else_=None))).label("periods_active"),
            func.max(case((debits > 0, period), else_=None)).label("last_active_period"),
            func.coalesce(func.min(period), _created_period(dialect)).label("first_period"),
        )
        .select_from(Customer)
        .outerjoin(FeedRecord, FeedRecord.customer_id == Customer.id)
        .group_by(Customer.id, Customer.created_at)
        .subquery()
    )
    m = per_customer.c
    tenure = literal(ref) - _sql_month_index(m.first_period)
    by_spend = (m.spend.desc(), m.customer_id.asc())
    ranked = select(
        m.customer_id,
        m.spend,
        m.spend_recent,
        m.spend_before,
        func.row_number().over(order_by=by_spend).label("spend_rank"),
        func.coalesce(func.sum(m.spend).over(order_by=by_spend, rows=(None, -1)), zero).label("spend_ahead"),
        m.periods_active,
        m.last_active_period,
        case((tenure > 0, tenure), else_=0).label("tenure_months"),
        func.ntile(5).over(order_by=(m.last_active_period.asc().nulls_first(), m.customer_id.desc())).label("r_score"),
        func.ntile(5).over(order_by=(m.periods_active.asc(), m.customer_id.desc())).label("f_score"),
        func.ntile(5).over(order_by=(m.spend.asc(), m.customer_id.desc())).label("m_score"),
        literal(utcnow()).label("refreshed_at"),
    )
    columns = [
        "customer_id", "spend", "spend_recent", "spend_before", "spend_rank", "spend_ahead", "periods_active",
        "last_active_period", "tenure_months", "r_score", "f_score", "m_score", "refreshed_at",
    ]
    session.execute(delete(CustomerMetrics))
    session.execute(CustomerMetrics.__table__.insert().from_select(columns, ranked))


def _update_customers(session: Session, limits: Thresholds, customers: int, ref: int) -> None:
    m = CustomerMetrics
    spend, ahead = cast(m.spend, Float), cast(m.spend_ahead, Float)
    total = select(func.coalesce(cast(func.sum(m.spend), Float), 0.0)).scalar_subquery()
    active = m.spend > 0
    tier = case(
        (~active, "small"),
        (m.spend_rank <= _cutoff(customers, limits.vip_share), "vip"),
        (m.spend_rank <= _cutoff(customers, limits.key_share), "key"),
        (m.spend_rank <= _cutoff(customers, limits.ordinary_share), "ordinary"),
        else_="small",
    )
    abc = case(
        (~active, "C"),
        (ahead < total * limits.abc_a_share, "A"),
        (ahead < total * limits.abc_b_share, "B"),
        else_="C",
    )
    recent, before = cast(m.spend_recent, Float), cast(m.spend_before, Float)
    # Gone: no charges in the idle periods, and no response (open, click, reply, payment) in
    # that time either; a customer who still responds is declining, not gone.
    responded = select(ResponseEvent.id).where(_human_responses(Customer.id, utcnow() - dt.timedelta(days=30 * limits.exit_idle_periods)))
    idle = and_(
        or_(m.last_active_period.is_(None), _sql_month_index(m.last_active_period) <= ref - limits.exit_idle_periods),
        ~responded.exists(),
    )
    stage = case(
        (m.tenure_months < limits.acquisition_months, "acquisition"),
        (idle, "exit"),
        (and_(before > 0, recent <= before * (1 - limits.decline_drop)), "decline"),
        (or_(m.last_active_period.is_(None), _sql_month_index(m.last_active_period) <= ref - limits.exit_idle_periods), "decline"),
        (or_(m.tenure_months < limits.maturity_months, recent >= before * (1 + limits.growth_rise)), "growth"),
        else_="maturity",
    )
    rfm = cast(m.r_score, String) + cast(m.f_score, String) + cast(m.m_score, String)
    session.execute(
        update(Customer)
        .where(Customer.id == m.customer_id)
        .values(value_tier=tier, abc_code=abc, lifecycle_stage=stage, rfm=rfm, engagement_score=_engagement(limits),
                last_response_at=_last_response())
        .execution_options(synchronize_session=False)
    )


def _human_responses(customer_id: Any, since: dt.datetime | None = None) -> Any:
    """The customer's opens, clicks, replies, conversions and payments, bots left out."""
    conditions = [E.customer_id == customer_id, E.type.in_(ENGAGEMENT), E.bot.is_(False)]
    if since is not None:
        conditions.append(E.occurred_at >= since)
    return and_(*conditions)


def _engagement(limits: "Thresholds") -> Any:
    """Points for the customer's responses in the last ``engagement_days``: an open 2, a
    click 5, a reply, conversion or payment 10; at most 100."""
    since = utcnow() - dt.timedelta(days=limits.engagement_days)
    points = case((E.type == "opened", 2), (E.type == "clicked", 5), else_=10)
    total = select(func.coalesce(func.sum(points), 0)).where(_human_responses(Customer.id, since)).scalar_subquery()
    return case((total > 100, 100), else_=total)


def _last_response() -> Any:
    return select(func.max(E.occurred_at)).where(_human_responses(Customer.id)).scalar_subquery()
