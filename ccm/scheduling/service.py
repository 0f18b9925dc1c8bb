"""Schedules as data: add, list, pause, resume, remove; each checked when saved (the cron
expression, the time zone, the communication, the options), so a typo fails at the prompt
and not at 2 a.m."""
from __future__ import annotations

import dataclasses
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

from ccm.models import Communication, utcnow
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
    """A schedule that cannot be saved or found; the message says which part and why, and
    ``field`` names the part (name, job, communication, cron, every_seconds, timezone,
    audience, local_time, period) when there is one, for a form to show it there."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class WallClockCronTrigger(CronTrigger):
    """A cron trigger that fires once per wall-clock time: when clocks go back, the hour
    that happens twice does not fire twice (APScheduler 3 would run a 02:30 job at 02:30
    summer time and again at 02:30 winter time). A wall-clock time that does not happen
    (spring forward) fires an hour later that day (02:30 → 03:30 summer time)."""

    def get_next_fire_time(self, previous_fire_time, now):  # type: ignore[no-untyped-def]
        upcoming = super().get_next_fire_time(previous_fire_time, now)
        # Asked from before clocks go forward, APScheduler 3.11 can miss the first fire time
        # after the change (a daily 00:00 in Berlin asked at 00:00:01 on the day summer time
        # begins answers the day after next): ask again from the change.
        change = _offset_change(now.astimezone(self.timezone), upcoming) if upcoming is not None else None
        if change is not None:
            again = super().get_next_fire_time(None, change)
            if again is not None and again < upcoming:
                upcoming = again
        while upcoming is not None and _repeated(upcoming):
            upcoming = super().get_next_fire_time(None, _after_repeated_hour(upcoming))
        return upcoming


def _offset_change(start: dt.datetime, end: dt.datetime) -> dt.datetime | None:
    """The first minute after ``start`` (and before ``end``) when the zone's UTC offset is
    not ``start``'s, or None. Walks days, then halves the day of the change."""
    zone, offset = start.tzinfo, start.utcoffset()
    begin, stop = start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)
    day = dt.timedelta(days=1)
    while begin < stop:
        step = min(day, stop - begin)
        if (begin + step).astimezone(zone).utcoffset() != offset:
            low, high = begin, begin + step
            while high - low > dt.timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            return high.astimezone(zone)
        begin += step
    return None


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
        raise ScheduleError(f"name {name!r}: letters, digits, '.', '_' and '-', at most 100", "name")
    if name == BUILT_IN_SWEEPER:
        raise ScheduleError(f"{name} is the built-in retry sweeper's name; choose another", "name")
    if session.scalar(select(Schedule.id).where(Schedule.name == name)) is not None:
        raise ScheduleError(f"a schedule named {name!r} exists; remove it first or choose another name", "name")
    fields = _checked(session, job, communication, cron, every_seconds, timezone, options)
    now = utcnow()
    schedule = Schedule(name=name, **fields, paused=False, created_at=now, updated_at=now)
    session.add(schedule)
    session.flush()
    return schedule


def update_schedule(session: Session, name: str, job: str, *, communication: str | None = None, cron: str | None = None,
                    every_seconds: int | None = None, timezone: str = "UTC",
                    options: dict[str, Any] | None = None) -> dict[str, list[Any]]:
    """Change what the schedule ``name`` does and when, checked as ``add_schedule`` checks
    (the name, its paused state and its history stay). Returns what changed, ``{field:
    [before, after]}``. The active scheduler rebuilds its job when the trigger changed (the
    ``fingerprint``: job, cron, interval, zone) and reads the rest at each execution."""
    schedule = get_schedule(session, name)
    changes: dict[str, list[Any]] = {}
    for key, value in _checked(session, job, communication, cron, every_seconds, timezone, options).items():
        before = getattr(schedule, key)
        if before != value:
            changes[key] = [before, value]
            setattr(schedule, key, value)
    if changes:
        schedule.updated_at = utcnow()
        session.flush()
    return changes


def _checked(session: Session, job: str, communication: str | None, cron: str | None, every_seconds: int | None,
             timezone: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The schedule's fields once each is checked (the communication by its own name)."""
    if job not in JOBS:
        raise ScheduleError(f"job {job!r}: one of {', '.join(JOBS)}", "job")
    if (cron is None) == (every_seconds is None):
        raise ScheduleError("give either a cron expression (--cron '0 9 * * 3') or an interval (--every SECONDS)", "cron")
    if every_seconds is not None and every_seconds < 1:
        raise ScheduleError("--every must be at least 1 second", "every_seconds")
    zone = _zone(timezone)
    if cron is not None:
        try:
            cron_trigger(cron, zone)
        except ValueError as exc:
            raise ScheduleError(f"cron {cron!r}: {exc} (five fields: minute hour day month weekday)", "cron") from None
    options = dict(options or {})
    unknown = sorted(set(options) - OPTIONS[job])
    if unknown:
        raise ScheduleError(f"option {unknown[0]!r} does not apply to {job} (it takes: {', '.join(sorted(OPTIONS[job])) or 'none'})",
                            unknown[0])
    if "local_time" in options and not LOCAL_TIME.match(str(options["local_time"])):
        raise ScheduleError(f"local_time {options['local_time']!r}: HH:MM, e.g. 09:00", "local_time")
    if "period" in options and options["period"] not in ("previous", "current"):
        raise ScheduleError("period: previous (the month before the run, the default) or current", "period")
    if job in NEEDS_COMMUNICATION:
        communication = _communication(session, job, communication)
    elif communication:
        raise ScheduleError(f"{job} takes no communication", "communication")
    if "audience" in options:
        if options["audience"] not in segment_names(session):
            raise ScheduleError(f"audience: no such segment {options['audience']!r}", "audience")
    return {"job": job, "communication": communication, "cron": cron, "every_seconds": every_seconds, "timezone": timezone,
            "options": options}


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"time zone {timezone!r} is not an IANA name such as Europe/Berlin", "timezone") from None


def _communication(session: Session, job: str, name: str | None) -> str:
    if not name:
        raise ScheduleError(f"{job} needs a communication (--communication NAME)", "communication")
    ensure_built_in(session)
    try:
        communication = get_communication(session, name)
    except LookupError as exc:
        raise ScheduleError(str(exc), "communication") from None
    if job == "campaign" and not is_marketing(communication):
        raise ScheduleError(f"{communication.name} is not a campaign (kind {communication.kind}); schedule it as a statement run", "communication")
    if job == "statement" and is_marketing(communication):
        raise ScheduleError(f"{communication.name} is a campaign: use --job campaign", "communication")
    if job == "reminders" and not communication.config.get("reminder"):
        raise ScheduleError(f"{communication.name} has no reminder settings (config.reminder)", "communication")
    return communication.name


def audit_details(fields: dict[str, Any]) -> dict[str, Any]:
    """A schedule's fields (as ``add_schedule`` takes them) for the audit log: those given,
    its options among them."""
    described = {key: value for key, value in fields.items() if key != "options" and value not in (None, "")}
    return {**described, **(fields.get("options") or {})}


def audit_changes(changes: dict[str, list[Any]]) -> dict[str, str]:
    """What ``update_schedule`` changed, for the audit log: ``{field: "before → after"}``."""
    return {key: f"{_shown(before)} → {_shown(after)}" for key, (before, after) in changes.items()}


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in sorted(value.items())) or "—"
    return "—" if value in (None, "") else str(value)


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


# --------------------------------------------------------------------------- fire times, for the scheduler desk

CRON_FIELDS = ("minute", "hour", "day", "month", "weekday")


@dataclass
class CronCheck:
    """A cron expression as typed: the error and where it is (``field``, ``column``: 1-based
    in the expression), or the next fire times (aware, in the schedule's zone)."""
    expression: str
    error: str | None = None
    field: str | None = None
    column: int | None = None
    times: list[dt.datetime] = dataclasses.field(default_factory=list)


def check_cron(expression: str, timezone: str = "UTC", count: int = 5, now: dt.datetime | None = None) -> CronCheck:
    """Check a cron expression as crontab(5) reads it (see ``cron_trigger``) and list its
    next ``count`` fire times in ``timezone`` (a bad zone raises ScheduleError)."""
    zone = _zone(timezone)
    parts = [(match.start(), match.group()) for match in re.finditer(r"\S+", expression)]
    if len(parts) != 5:
        column = parts[5][0] + 1 if len(parts) > 5 else len(expression.rstrip()) + 1
        return CronCheck(expression, f"five fields expected (minute hour day month weekday), got {len(parts)}", column=column)
    for name, (start, text) in zip(CRON_FIELDS, parts):
        try:
            _weekdays(text) if name == "weekday" else CronTrigger(**{name: text})
        except ValueError as exc:
            return CronCheck(expression, f"{name} {text!r}: {exc}", field=name, column=start + 1)
    try:
        trigger = cron_trigger(expression, zone)
    except ValueError as exc:
        return CronCheck(expression, str(exc), column=1)
    times = next_fire_times(trigger, count, now)
    if not times:
        return CronCheck(expression, "it never fires (no such date)", field="day", column=parts[2][0] + 1)
    return CronCheck(expression, times=times)


Trigger = CronTrigger | OrTrigger | IntervalTrigger


def next_fire_times(trigger: Trigger, count: int, now: dt.datetime | None = None) -> list[dt.datetime]:
    """The next ``count`` fire times of ``trigger`` from ``now`` (aware, in its zone)."""
    times: list[dt.datetime] = []
    moment = trigger.get_next_fire_time(None, _aware(now or utcnow()))
    while moment is not None and len(times) < count:
        times.append(_normal(moment))
        moment = trigger.get_next_fire_time(moment, moment)
    return times


def fires_between(trigger: Trigger, start: dt.datetime, end: dt.datetime, limit: int,
                  cron: str | None = None) -> tuple[list[dt.datetime], int]:
    """The first ``limit`` fire times in [start, end), and how many more there are: counted
    without listing them for an interval or when ``cron`` (the trigger's expression) is
    given, so an every-minute schedule costs a few thousand steps at most."""
    times: list[dt.datetime] = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment < end and len(times) < limit:
        times.append(_normal(moment))
        moment = trigger.get_next_fire_time(moment, moment)
    if moment is None or moment >= end:
        return times, 0
    return times, _count_from(trigger, moment, end, cron.split() if cron else None)


def _count_from(trigger: Trigger, first: dt.datetime, end: dt.datetime, expression: list[str] | None) -> int:
    """How many fire times there are in [first, end), ``first`` being one: a whole day without
    a change of clocks has (matching day) x hours x minutes of them; other days are walked."""
    if isinstance(trigger, IntervalTrigger):
        return 1 + (end - first - dt.timedelta(microseconds=1)) // trigger.interval
    zone = first.tzinfo
    minutes = _distinct(f"{expression[0]} 0 1 1 *", dt.timedelta(hours=1)) if expression else 0
    hours = _distinct(f"0 {expression[1]} 1 1 *", dt.timedelta(days=1)) if expression else 0
    days = cron_trigger(f"0 0 {expression[2]} {expression[3]} {expression[4]}", ZoneInfo("UTC")) if expression else None
    count, day = 0, first.date()
    while True:
        day_start = dt.datetime.combine(day, dt.time(), zone)
        day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
        if day_start >= end:
            return count
        whole = days is not None and day_start > first and day_end <= end and day_start.utcoffset() == day_end.utcoffset()
        if whole:
            midnight = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
            count += minutes * hours if days.get_next_fire_time(None, midnight) == midnight else 0
        else:  # a part of a day, or the day clocks change: each fire time
            moment = trigger.get_next_fire_time(None, max(first, day_start))
            while moment is not None and moment < min(end, day_end):
                count += 1
                moment = trigger.get_next_fire_time(moment, moment)
        day += dt.timedelta(days=1)


def _distinct(expression: str, span: dt.timedelta) -> int:
    """How many times ``expression`` fires in the first ``span`` of 2001 (UTC)."""
    trigger, start = cron_trigger(expression, ZoneInfo("UTC")), dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc)
    count, moment = 0, trigger.get_next_fire_time(None, start)
    while moment is not None and moment < start + span:
        count, moment = count + 1, trigger.get_next_fire_time(moment, moment)
    return count


def _normal(moment: dt.datetime) -> dt.datetime:
    """The fire time as its zone shows it: a wall-clock time that does not happen (02:30 the
    day clocks go forward, as APScheduler gives it) is the instant it stands for (03:30)."""
    return moment.astimezone(dt.timezone.utc).astimezone(moment.tzinfo)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment


@dataclass
class Upcoming:
    """A schedule's fire times in a window: the first ``limit`` of them, and how many more."""
    name: str
    job: str
    communication: str | None
    timezone: str
    paused: bool
    times: list[dt.datetime]
    more: int


def upcoming(session: Session, start: dt.datetime, end: dt.datetime, limit: int = 40) -> list[Upcoming]:
    """Every schedule's fire times in [start, end) (none while paused), at most ``limit`` each."""
    start, end = _aware(start), _aware(end)
    rows = []
    for schedule in session.scalars(select(Schedule).order_by(Schedule.name)):
        times, more = ([], 0) if schedule.paused else fires_between(trigger_of(schedule), start, end, limit, schedule.cron)
        rows.append(Upcoming(schedule.name, schedule.job, schedule.communication, schedule.timezone, schedule.paused, times, more))
    return rows


def schedulable_communications(session: Session) -> dict[str, list[str]]:
    """The communications for each job, each under one: reminders (those with reminder
    settings), campaigns (marketing), statements (the rest: statements, bills...)."""
    ensure_built_in(session)
    found: dict[str, list[str]] = {job: [] for job in NEEDS_COMMUNICATION}
    for communication in session.scalars(select(Communication).order_by(Communication.name)):
        job = "reminders" if communication.config.get("reminder") else "campaign" if is_marketing(communication) else "statement"
        found[job].append(communication.name)
    return found
