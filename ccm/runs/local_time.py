"""At 09:00 in each customer's own time zone.

A campaign scheduled with ``local_time`` is planned once; each message then waits
(``deferred``) until the first ``local_time`` in its customer's time zone at or after the
planning, and the retry sweeper releases it then. Daylight saving is the zone's business:
09:00 is 09:00 on the wall clock, whatever the offset that day; a wall-clock time that does
not exist on a spring-forward day is read with the offset before the change (it lands an
hour later), one that exists twice on a fall-back day is the first of the two.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.models import Customer, Message, MessageState, utcnow
from ccm.runs import outbox


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def release_time(now_utc: dt.datetime, timezone: str | None, local: dt.time) -> dt.datetime:
    """The first ``local`` wall-clock time in ``timezone`` at or after ``now_utc`` (naive
    UTC in, naive UTC out)."""
    tz = zone(timezone)
    here = now_utc.replace(tzinfo=dt.timezone.utc).astimezone(tz)
    for days in range(3):
        candidate = dt.datetime.combine(here.date() + dt.timedelta(days=days), local, tzinfo=tz)
        # zoneinfo keeps the wall time; going through UTC settles gaps (spring forward) and folds.
        exact = candidate.astimezone(dt.timezone.utc)
        if exact >= now_utc.replace(tzinfo=dt.timezone.utc):
            return exact.replace(tzinfo=None)
    raise AssertionError("unreachable: a wall-clock time happens at least once in two days")


def hold_until_local_time(session: Session, run_id: int, local: str, now: dt.datetime | None = None) -> int:
    """Defer the run's pending messages to ``local`` (HH:MM) in each customer's time zone;
    returns how many wait (the others are due now)."""
    now = now or utcnow()
    at = dt.time.fromisoformat(local)
    rows = session.execute(
        select(Message.id, Customer.timezone).join(Customer, Message.customer_id == Customer.id)
        .where(Message.run_id == run_id, Message.state == "pending")
    ).all()
    held = []
    for message_id, timezone in rows:
        release = release_time(now, timezone, at)
        if release > now + dt.timedelta(seconds=30):
            held.append({"id": message_id, "state": MessageState.DEFERRED, "next_attempt_at": release,
                         "reason": f"released at {local} in the customer's time zone"})
    outbox.set_messages(session, held)
    return len(held)
