"""Time zones and daylight saving: cron schedules in the schedule's zone, messages released
at a local time in each customer's zone, statement periods; with frozen time."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from ccm.scheduling.service import cron_trigger
from ccm.runs.local_time import release_time
from ccm.scheduling.timing import billing_period, cycle_label

UTC = dt.timezone.utc


def fires(expression: str, zone: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    trigger = cron_trigger(expression, ZoneInfo(zone))
    out, previous, now = [], None, start.replace(tzinfo=UTC)
    for _ in range(count):
        nxt = trigger.get_next_fire_time(previous, now)
        out.append(nxt.astimezone(UTC).replace(tzinfo=None))
        previous, now = nxt, nxt + dt.timedelta(seconds=1)
    return out


def test_weekday_numbers_are_crontabs_not_apschedulers():
    # 2026-12-02 is a Wednesday; crontab's 3 is Wednesday (APScheduler's own 3 would be Thursday).
    assert fires("0 9 * * 3", "UTC", dt.datetime(2026, 11, 29), 1) == [dt.datetime(2026, 12, 2, 9)]
    assert [d.weekday() for d in fires("0 9 * * 1-5", "UTC", dt.datetime(2026, 11, 29), 5)] == [0, 1, 2, 3, 4]
    assert [d.weekday() for d in fires("0 9 * * 0,7", "UTC", dt.datetime(2026, 11, 29), 2)] == [6, 6]
    assert [d.weekday() for d in fires("0 9 * * sat-sun", "UTC", dt.datetime(2026, 11, 29), 1)] == [6]
    assert [d.weekday() for d in fires("0 9 * * 5-0", "UTC", dt.datetime(2026, 11, 30), 3)] == [4, 5, 6]


def test_a_weekly_campaign_keeps_its_local_hour_across_the_end_of_summer_time():
    # New York leaves daylight saving time on Sunday 2026-11-01: 09:00 is 13:00 UTC before, 14:00 after.
    assert fires("0 9 * * 3", "America/New_York", dt.datetime(2026, 10, 20), 3) == [
        dt.datetime(2026, 10, 21, 13), dt.datetime(2026, 10, 28, 13), dt.datetime(2026, 11, 4, 14)]


def test_a_daily_job_at_a_time_that_does_not_exist_on_the_spring_forward_day():
    # Berlin skips 02:00-03:00 on 2026-03-29: the 02:30 job runs once that day, not never and not twice.
    days = fires("30 2 * * *", "Europe/Berlin", dt.datetime(2026, 3, 27), 4)
    assert [d.date() for d in days] == [dt.date(2026, 3, 27), dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 3, 30)]
    assert days[0] == dt.datetime(2026, 3, 27, 1, 30) and days[3] == dt.datetime(2026, 3, 30, 0, 30)


@pytest.mark.parametrize(("expression", "zone", "start"), [
    ("0 0 * * *", "Europe/Berlin", dt.datetime(2026, 3, 27, 12)),  # midnight before and after 2026-03-29's change
    ("0 1 * * *", "Europe/Berlin", dt.datetime(2026, 3, 27, 12)),
    ("0 0 * * *", "America/New_York", dt.datetime(2026, 3, 6, 12)),  # 2026-03-08
    ("15 0 * * *", "Australia/Lord_Howe", dt.datetime(2026, 10, 2, 12)),  # a half-hour change, 2026-10-04
])
def test_a_daily_job_fires_every_day_around_the_spring_forward_change(expression, zone, start):
    # APScheduler 3.11 alone, asked just after midnight of the change day, skips the next day.
    days = [moment.astimezone(ZoneInfo(zone)).date() for moment in
            (d.replace(tzinfo=UTC) for d in fires(expression, zone, start, 6))]
    assert days == [days[0] + dt.timedelta(days=n) for n in range(6)]


def test_a_daily_job_in_the_repeated_hour_of_the_fall_back_day_runs_once():
    days = fires("30 2 * * *", "Europe/Berlin", dt.datetime(2026, 10, 24), 3)  # 2026-10-25: 02:00-03:00 twice
    assert [d.date() for d in days] == [dt.date(2026, 10, 24), dt.date(2026, 10, 25), dt.date(2026, 10, 26)]


@pytest.mark.parametrize(("zone", "now", "expected"), [
    ("America/Chicago", dt.datetime(2026, 12, 1, 20, 0), dt.datetime(2026, 12, 2, 15, 0)),  # 09:00 CST
    ("Asia/Kolkata", dt.datetime(2026, 12, 1, 20, 0), dt.datetime(2026, 12, 2, 3, 30)),  # 09:00 IST (+05:30)
    ("Pacific/Auckland", dt.datetime(2026, 12, 1, 20, 0), dt.datetime(2026, 12, 1, 20, 0)),  # it is 09:00 there now
    ("Pacific/Kiritimati", dt.datetime(2026, 12, 1, 20, 0), dt.datetime(2026, 12, 2, 19, 0)),  # +14: 10:00 there, so tomorrow
    ("America/New_York", dt.datetime(2026, 3, 7, 20, 0), dt.datetime(2026, 3, 8, 13, 0)),  # DST starts 03-08: 09:00 EDT
    ("America/New_York", dt.datetime(2026, 10, 31, 20, 0), dt.datetime(2026, 11, 1, 14, 0)),  # DST ends 11-01: 09:00 EST
    ("Not/AZone", dt.datetime(2026, 12, 1, 8, 0), dt.datetime(2026, 12, 1, 9, 0)),  # an unknown zone: UTC
])
def test_release_at_nine_in_the_customers_own_zone(zone, now, expected):
    assert release_time(now, zone, dt.time(9, 0)) == expected


def test_a_local_time_that_does_not_exist_that_day_comes_an_hour_later():
    # 02:30 does not exist in New York on 2026-03-08; it is read as 02:30 EST = 03:30 EDT = 07:30 UTC.
    assert release_time(dt.datetime(2026, 3, 8, 5, 0), "America/New_York", dt.time(2, 30)) == dt.datetime(2026, 3, 8, 7, 30)


def test_labels_and_periods_follow_the_schedules_zone():
    fire = dt.datetime(2026, 12, 1, 1, 0)  # 1 December 01:00 UTC is still 30 November in Chicago
    assert billing_period(fire, "UTC") == "2026-11" and billing_period(fire, "America/Chicago") == "2026-10"
    assert billing_period(fire, "UTC", "current") == "2026-12"
    assert cycle_label(fire, "Europe/Berlin") == "20261201T0200" and cycle_label(fire, "UTC", seconds=True) == "20261201T010000"


def test_frozen_time_moves_the_releases(campaign_engine):
    """A campaign planned on Saturday evening before New York's spring forward releases each
    customer's message at 09:00 their time on Sunday; the sweeper sends them as time passes."""
    from ccm.models import Customer, Message
    from ccm.runs.plan import plan_run
    from ccm.scheduling.jobs import retry_sweeper
    from ccm.runs.local_time import hold_until_local_time
    from sqlalchemy import select

    engine = campaign_engine
    with engine.db.session() as session:
        for customer in session.scalars(select(Customer)):
            customer.timezone = {"E000": "America/New_York", "E001": "Europe/London", "E002": "Asia/Tokyo"}.get(customer.external_id, "UTC")
    with time_machine.travel(dt.datetime(2026, 3, 7, 20, 0, tzinfo=UTC), tick=False):
        plan = plan_run(engine, "deals", "2026-03-08")
        with engine.db.session() as session:
            hold_until_local_time(session, plan.run_id, "09:00")
        from ccm.runs.executor import execute

        execute(engine, plan.run_id, progress=False)
    releases = {}
    with engine.db.session() as session:
        for message, ext in session.execute(select(Message, Customer.external_id).join(Customer).where(Message.run_id == plan.run_id)):
            releases[ext] = (message.state, message.next_attempt_at)
    assert releases["E002"] == ("deferred", dt.datetime(2026, 3, 8, 0, 0))  # 09:00 JST
    assert releases["E001"] == ("deferred", dt.datetime(2026, 3, 8, 9, 0))  # 09:00 GMT
    assert releases["E000"] == ("deferred", dt.datetime(2026, 3, 8, 13, 0))  # 09:00 EDT, the first day of summer time

    def sent(ext: str) -> bool:
        with engine.db.session() as session:
            return session.scalar(select(Message.state).join(Customer).where(Message.run_id == plan.run_id,
                                                                           Customer.external_id == ext)) == "sent"

    for moment, expected in [((2026, 3, 8, 0, 1), {"E002"}), ((2026, 3, 8, 9, 1), {"E002", "E001"}),
                             ((2026, 3, 8, 13, 1), {"E002", "E001", "E000"})]:
        with time_machine.travel(dt.datetime(*moment, tzinfo=UTC), tick=False):
            retry_sweeper(engine, None, dt.datetime(*moment))
        assert {ext for ext in ("E000", "E001", "E002") if sent(ext)} == expected, moment


def test_day_of_month_or_weekday_as_in_crontab():
    # "the 1st of each month and every Monday" (crontab ORs the two when both are restricted)
    days = fires("0 9 1 * 1", "UTC", dt.datetime(2026, 11, 29), 5)
    assert [d.date() for d in days] == [dt.date(2026, 11, 30), dt.date(2026, 12, 1), dt.date(2026, 12, 7),
                                        dt.date(2026, 12, 14), dt.date(2026, 12, 21)]
