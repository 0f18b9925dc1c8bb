"""The labels of scheduled runs: a campaign's cycle from its fire time, a statement run's
billing period. Holding messages until a local time is the runs' business
(``ccm.runs.local_time``)."""
from __future__ import annotations

import datetime as dt

from ccm.runs import zone


def cycle_label(fire_utc: dt.datetime, timezone: str, *, seconds: bool = False) -> str:
    """A campaign run's cycle from its fire time in the schedule's zone: 20261202T0900."""
    local = fire_utc.replace(tzinfo=dt.timezone.utc).astimezone(zone(timezone))
    return local.strftime("%Y%m%dT%H%M%S" if seconds else "%Y%m%dT%H%M")


def billing_period(fire_utc: dt.datetime, timezone: str, which: str = "previous") -> str:
    """The statement cycle a scheduled statement run sends: the month before the fire date
    (a run on the 1st sends last month's statements), or the fire date's month."""
    local = fire_utc.replace(tzinfo=dt.timezone.utc).astimezone(zone(timezone)).date()
    if which == "previous":
        local = local.replace(day=1) - dt.timedelta(days=1)
    return f"{local.year:04d}-{local.month:02d}"
