"""Reminders of an important date: a daily job finds the customers whose date (a custom
attribute such as ``contract_end``, ``renewal`` or ``birthday``, written ``YYYY-MM-DD``) is
N days away and sends them the reminder communication, once per customer per occurrence.

A communication's ``config.reminder``: ``{"attribute": "contract_end", "days_before": 30,
"yearly": false}``. ``yearly`` dates (birthdays, anniversaries) come back every year, on
their month and day (29 February on 28 February in other years). The selection runs in
SQL; the idempotency key holds the date of the occurrence, so the job may run twice a day,
or again after a crash, without a second message. Days no execution covered are made up
for (at most ``CATCH_UP_DAYS``), except those whose date has passed. Templates see
``reminder.date`` (the customer's date this time) and ``reminder.days`` (how many days are
left when the reminder is planned: fewer than ``days_before`` when it comes late).
"""
from __future__ import annotations

import calendar
import datetime as dt
import logging

from sqlalchemy import func, or_

from ccm.wiring import Engine
from ccm.models import Customer
from ccm.runs.plan import PlanError, PlanResult, plan_audience
from ccm.runs.local_time import zone

log = logging.getLogger(__name__)


def reminder_settings(config: dict) -> tuple[str, int, bool]:
    spec = config.get("reminder") or {}
    attribute, days = spec.get("attribute"), spec.get("days_before", 0)
    if not isinstance(attribute, str) or not attribute or not isinstance(days, int) or days < 0:
        raise PlanError("config.reminder needs an attribute (a date attribute of customers) and days_before >= 0")
    return attribute, days, bool(spec.get("yearly", False))


def due_condition(attribute: str, target: dt.date, yearly: bool):  # type: ignore[no-untyped-def]
    """Customers whose ``attribute`` is on ``target`` (or, yearly, on its month and day)."""
    value = Customer.attributes[attribute].as_string()
    if not yearly:
        return value == target.isoformat()
    month_day = func.substr(value, 6, 5)
    days = [target.strftime("%m-%d")]
    if target.month == 2 and target.day == 28 and not calendar.isleap(target.year):
        days.append("02-29")
    return or_(*(month_day == day for day in days))


CATCH_UP_DAYS = 31  # the most days of missed reminders made up for at once


def plan_reminders(engine: Engine, communication: str, fire_time: dt.datetime, timezone: str,
                   since: dt.datetime | None = None) -> list[PlanResult]:
    """Plan the reminders due on the fire time's day (in the schedule's zone), one run per
    date reminded of (cycle: that date). With ``since`` (the last completed execution), the
    days after it are made up for too, so a day without a scheduler skips nobody."""
    from ccm.communications import get_communication

    today = fire_time.replace(tzinfo=dt.timezone.utc).astimezone(zone(timezone)).date()
    first = today
    if since is not None:
        first = since.replace(tzinfo=dt.timezone.utc).astimezone(zone(timezone)).date() + dt.timedelta(days=1)
        first = max(first, today - dt.timedelta(days=CATCH_UP_DAYS))
    with engine.db.session() as session:
        config = get_communication(session, communication).config
    attribute, days, yearly = reminder_settings(config)
    plans = []
    for offset in range((today - first).days + 1):
        target = first + dt.timedelta(days=offset + days)
        if target < today:  # a day made up for whose date has passed: a reminder of it would come too late
            log.info("%s: the reminders of %s are too late to send (made up for on %s)", communication, target, today)
            continue
        plan = _plan_one(engine, communication, attribute, target, (target - today).days, yearly)
        if plan is not None:
            plans.append(plan)
    return plans


def _plan_one(engine: Engine, communication: str, attribute: str, target: dt.date, days_left: int, yearly: bool) -> PlanResult | None:
    """The run of one date (cycle: the date); ``days_left`` as the reminder says it: fewer
    than ``days_before`` when a day is made up for late."""
    def key(customer: Customer) -> str:
        return f"{target.isoformat()}:{customer.external_id}:reminder"

    try:
        return plan_audience(engine, communication, target.isoformat(), due_condition(attribute, target, yearly), key=key,
                             purpose="reminder", data={"reminder": {"date": target.isoformat(), "days": days_left}})
    except PlanError as exc:
        if "audience is empty" in str(exc):
            log.info("%s: no %s on %s", communication, attribute, target)
            return None
        raise

