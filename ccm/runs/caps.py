"""Frequency caps across communications: ``[delivery] marketing_cap = "2/7d"`` lets at most two
marketing messages reach a customer in any seven days, whichever campaigns they come from
and however they were started (scheduled, triggered, by hand). Service messages
(statements, bills, reminders of a payment, confirmations) are exempt and do not count.

Checked when a campaign is planned and again just before each message is sent; a message
over the cap is suppressed with the reason (the next campaign tries again).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ccm.delivery_settings import Cap
from ccm.models import Communication, Message, Run, utcnow



def marketing_sent(session: Session, customer_ids: Iterable[int], since: dt.datetime, *, except_run: int | None = None) -> dict[int, int]:
    """How many marketing messages each customer was sent since ``since`` (one query)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    query = (
        select(Message.customer_id, func.count())
        .join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
        .where(Message.customer_id.in_(ids), Message.state == "sent", Message.sent_at >= since, Communication.kind == "marketing")
        .group_by(Message.customer_id)
    )
    if except_run is not None:
        query = query.where(Message.run_id != except_run)
    return dict(session.execute(query).all())


def over_cap(settings: dict, session: Session, customer_ids: Iterable[int], *, except_run: int | None = None,
             now: dt.datetime | None = None) -> tuple[Cap | None, set[int]]:
    """The cap, and the customers who reached it."""
    cap = Cap.parse(settings["delivery"]["marketing_cap"])
    if cap is None:
        return None, set()
    since = (now or utcnow()) - dt.timedelta(days=cap.days)
    counts = marketing_sent(session, customer_ids, since, except_run=except_run)
    return cap, {customer for customer, count in counts.items() if count >= cap.messages}


def last_marketing(session: Session, customer_ids: Iterable[int], *, except_run: int | None = None) -> dict[int, dt.datetime]:
    """When each customer was last sent a marketing message (for the frequency they chose)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    query = (
        select(Message.customer_id, func.max(Message.sent_at))
        .join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
        .where(Message.customer_id.in_(ids), Message.state == "sent", Communication.kind == "marketing")
        .group_by(Message.customer_id)
    )
    if except_run is not None:
        query = query.where(Message.run_id != except_run)
    return {customer: at for customer, at in session.execute(query).all() if at is not None}


def frequency_problem(customer, last_sent: dt.datetime | None, now: dt.datetime) -> str | None:  # type: ignore[no-untyped-def]
    """Why the customer's own choice (at most weekly, monthly) holds a marketing message back."""
    from ccm.runs.policy import frequency_days

    days = frequency_days(customer)
    if days and last_sent is not None and now - last_sent < dt.timedelta(days=days):
        return f"frequency chosen by the customer ({customer.preferences.get('frequency')})"
    return None
