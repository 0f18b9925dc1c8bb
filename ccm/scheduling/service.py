"""Schedules as data: add, list, pause, resume, remove; each checked when saved (the cron
expression, the time zone, the communication, the options), so a typo fails at the prompt
and not at 2 a.m."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.models import utcnow
from ccm.models.scheduling import BUILT_IN_SWEEPER, JOBS, Schedule, ScheduleRun
from ccm.segments import segment_names
from ccm.communications import ensure_built_in, get_communication, is_marketing

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
NEEDS_COMMUNICATION = ("campaign", "statement", "reminders")
OPTIONS = {
    "campaign": {"audience", "local_time"},
    "statement": {"period", "audience"},
    "reminders": set(),
    "segments-refresh": set(),
    "retry-sweeper": set(),
}


class ScheduleError(ValueError):
    """A schedule that cannot be saved or found; the message says which part and why."""


WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class WallClockCronTrigger(CronTrigger):
    """A cron trigger that fires once per wall-clock time: when clocks go back, the hour
    that happens twice does not fire twice (APScheduler 3 would run a 02:30 job at 02:30
    summer time and again at 02:30 winter time). A wall-clock time that does not happen
    (spring forward) fires an hour later that day (02:30 → 03:30 summer time)."""

    def get_next_fire_time(self, previous_fire_time, now):  # type: ignore[no-untyped-def]
        upcoming = super().get_next_fire_time(previous_fire_time, now)
        while upcoming is not None and _repeated(upcoming):
            upcoming = super().get_next_fire_time(None, _after_repeated_hour(upcoming))
        return upcoming


def _repeated(moment: dt.datetime) -> bool:
    """The second occurrence of a wall-clock time on the day clocks go back."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def _after_repeated_hour(moment: dt.datetime) -> dt.datetime:
    zone, instant = moment.tzinfo, moment.astimezone(dt.timezone.utc)
    while True:
        instant += dt.timedelta(minutes=1)
        local = instant.astimezone(zone)
        if local.replace(fold=0).utcoffset() == local.replace(fold=1).utcoffset():
            return local


def cron_trigger(expression: str, zone: ZoneInfo) -> CronTrigger | OrTrigger:
    """A standard five-field cron expression as an APScheduler trigger, read as crontab(5)
    reads it: weekday 0 or 7 is Sunday, 1 Monday (APScheduler's own numbers start at Monday),
    and when both the day of the month and the weekday are restricted, either one matching
    fires ("0 9 1 * 1": the 1st of each month and every Monday)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"five fields expected, got {len(fields)}")
    minute, hour, day, month, weekday = fields
    days = _weekdays(weekday)
    if day not in ("*", "?") and days != "*":
        return OrTrigger([
            WallClockCronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=zone),
            WallClockCronTrigger(minute=minute, hour=hour, month=month, day_of_week=days, timezone=zone),
        ])
    return WallClockCronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=days, timezone=zone)


def _weekdays(field: str) -> str:
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            low, high = 0, 6
        elif "-" in spec:
            low, high = (_weekday(x) for x in spec.split("-", 1))
            high = 7 if high == 0 and low > 0 else high  # 1-7 and 5-0 run to Sunday
        else:
            low = high = _weekday(spec)
        if low > high or step < 1:
            raise ValueError(f"weekday {part!r} is not a valid range")
        days.update(value % 7 for value in range(low, high + 1, step))
    return ",".join(WEEKDAYS[d] for d in sorted(days))


def _weekday(text: str) -> int:
    if text in WEEKDAYS:
        return WEEKDAYS.index(text)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    raise ValueError(f"weekday {text!r}: 0-7 (0 and 7 are Sunday) or sun, mon, ..., sat")


def trigger_of(schedule: Schedule) -> CronTrigger | OrTrigger | IntervalTrigger:
    zone = ZoneInfo(schedule.timezone)
    if schedule.cron:
        return cron_trigger(schedule.cron, zone)
    start = schedule.created_at.replace(tzinfo=dt.timezone.utc)
    return IntervalTrigger(seconds=schedule.every_seconds, start_date=start, timezone=zone)


def fingerprint(schedule: Schedule) -> str:
    """What the scheduler's job must be rebuilt for when it changes."""
    return f"{schedule.job}|{schedule.cron or ''}|{schedule.every_seconds or ''}|{schedule.timezone}"


def add_schedule(session: Session, name: str, job: str, *, communication: str | None = None, cron: str | None = None,
                 every_seconds: int | None = None, timezone: str = "UTC", options: dict[str, Any] | None = None) -> Schedule:
    if not NAME.match(name):
        raise ScheduleError(f"name {name!r}: letters, digits, '.', '_' and '-', at most 100")
    if name == BUILT_IN_SWEEPER:
        raise ScheduleError(f"{name} is the built-in retry sweeper's name; choose another")
    if session.scalar(select(Schedule.id).where(Schedule.name == name)) is not None:
        raise ScheduleError(f"a schedule named {name!r} exists; remove it first or choose another name")
    if job not in JOBS:
        raise ScheduleError(f"job {job!r}: one of {', '.join(JOBS)}")
    if (cron is None) == (every_seconds is None):
        raise ScheduleError("give either a cron expression (--cron '0 9 * * 3') or an interval (--every SECONDS)")
    if every_seconds is not None and every_seconds < 1:
        raise ScheduleError("--every must be at least 1 second")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"time zone {timezone!r} is not an IANA name such as Europe/Berlin") from None
    if cron is not None:
        try:
            cron_trigger(cron, ZoneInfo(timezone))
        except ValueError as exc:
            raise ScheduleError(f"cron {cron!r}: {exc} (five fields: minute hour day month weekday)") from None
    options = dict(options or {})
    unknown = sorted(set(options) - OPTIONS[job])
    if unknown:
        raise ScheduleError(f"option {unknown[0]!r} does not apply to {job} (it takes: {', '.join(sorted(OPTIONS[job])) or 'none'})")
    if "local_time" in options and not LOCAL_TIME.match(str(options["local_time"])):
        raise ScheduleError(f"local_time {options['local_time']!r}: HH:MM, e.g. 09:00")
    if "period" in options and options["period"] not in ("previous", "current"):
        raise ScheduleError("period: previous (the month before the run, the default) or current")
    if job in NEEDS_COMMUNICATION:
        communication = _communication(session, job, communication)
    elif communication:
        raise ScheduleError(f"{job} takes no communication")
    if "audience" in options:
        if options["audience"] not in segment_names(session):
            raise ScheduleError(f"audience: no such segment {options['audience']!r}")
    now = utcnow()
    schedule = Schedule(name=name, job=job, communication=communication, cron=cron, every_seconds=every_seconds,
                        timezone=timezone, options=options, paused=False, created_at=now, updated_at=now)
    session.add(schedule)
    session.flush()
    return schedule


def _communication(session: Session, job: str, name: str | None) -> str:
    if not name:
        raise ScheduleError(f"{job} needs a communication (--communication NAME)")
    ensure_built_in(session)
    try:
        communication = get_communication(session, name)
    except LookupError as exc:
        raise ScheduleError(str(exc)) from None
    if job == "campaign" and not is_marketing(communication):
        raise ScheduleError(f"{communication.name} is not a campaign (kind {communication.kind}); schedule it as a statement run")
    if job == "statement" and is_marketing(communication):
        raise ScheduleError(f"{communication.name} is a campaign: use --job campaign")
    if job == "reminders" and not communication.config.get("reminder"):
        raise ScheduleError(f"{communication.name} has no reminder settings (config.reminder)")
    return communication.name


def get_schedule(session: Session, name: str) -> Schedule:
    schedule = session.scalar(select(Schedule).where(Schedule.name == name))
    if schedule is None:
        known = sorted(session.scalars(select(Schedule.name)))
        raise ScheduleError(f"no such schedule: {name} (known: {', '.join(known) or 'none'})")
    return schedule


def set_paused(session: Session, name: str, paused: bool) -> Schedule:
    schedule = get_schedule(session, name)
    schedule.paused, schedule.updated_at = paused, utcnow()
    return schedule


def remove_schedule(session: Session, name: str) -> None:
    """Remove the schedule; its executions stay in the history, under its name."""
    session.delete(get_schedule(session, name))


@dataclass
class ScheduleView:
    name: str
    job: str
    communication: str | None
    when: str
    timezone: str
    options: dict[str, Any]
    paused: bool
    next_fire: str | None
    last: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_schedules(session: Session, now: dt.datetime | None = None) -> list[ScheduleView]:
    now = (now or utcnow()).replace(tzinfo=dt.timezone.utc)
    views = []
    for schedule in session.scalars(select(Schedule).order_by(Schedule.name)):
        trigger = trigger_of(schedule)
        upcoming = None if schedule.paused else trigger.get_next_fire_time(None, now)
        last = session.scalars(select(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id)
                               .order_by(ScheduleRun.fire_time.desc()).limit(1)).first()
        views.append(ScheduleView(
            name=schedule.name, job=schedule.job, communication=schedule.communication,
            when=f"cron {schedule.cron}" if schedule.cron else f"every {schedule.every_seconds} s",
            timezone=schedule.timezone, options=schedule.options or {}, paused=schedule.paused,
            next_fire=upcoming.isoformat() if upcoming else None,
            last=None if last is None else {"fire_time": last.fire_time.isoformat() + "Z", "state": last.state, "run_id": last.run_id,
                                            "summary": last.summary, "error": last.error},
        ))
    return views


def history(session: Session, name: str, limit: int = 50) -> list[dict[str, Any]]:
    """The latest executions recorded under ``name``: a schedule's, a removed schedule's
    (and those of one added again with the same name), or the built-in sweeper's
    (``ccm-retry-sweeper``)."""
    rows = list(session.scalars(select(ScheduleRun).where(ScheduleRun.schedule_name == name)
                                .order_by(ScheduleRun.fire_time.desc(), ScheduleRun.id.desc()).limit(limit)))
    if not rows:
        get_schedule(session, name)  # no such schedule: says which there are
    return [{"fire_time": r.fire_time.isoformat() + "Z", "started_at": r.started_at.isoformat() + "Z",
             "finished_at": r.finished_at.isoformat() + "Z" if r.finished_at else None, "state": r.state,
             "run_id": r.run_id, "run_ids": list(r.run_ids or []), "summary": r.summary, "error": r.error, "holder": r.holder,
             "removed": r.schedule_id is None and name != BUILT_IN_SWEEPER} for r in rows]
