"""The checks made again just before a message is sent, because the world moves on between
planning and sending: a customer unsubscribes or withdraws consent, an address bounces,
the clock enters the customer's quiet hours.

Each check returns what to do: send, suppress, defer until a time, or reroute to another
channel (a statement whose e-mail is no longer allowed goes by post instead).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ccm.models import Communication, Message
from ccm.runs.policy import reachable

STATEMENT = "statement"


@dataclass(frozen=True)
class Verdict:
    action: str  # send, suppress, defer, reroute
    reason: str | None = None
    channel: str | None = None  # for reroute
    until: dt.datetime | None = None  # for defer (naive UTC)


SEND = Verdict("send")


class QuietHours:
    """A daily window in the customer's own time zone, e.g. "21:00-08:00" (may wrap midnight)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec.strip()
        if not self.spec:
            self.start = self.end = None
            return
        try:
            start, end = (dt.time.fromisoformat(part.strip()) for part in self.spec.split("-"))
        except ValueError:
            raise ValueError(f"quiet hours must look like 21:00-08:00, got {spec!r}") from None
        self.start, self.end = start, end

    def ends(self, now_utc: dt.datetime, timezone: str) -> dt.datetime | None:
        """When the quiet window that ``now_utc`` falls in ends (naive UTC), or None if not quiet."""
        if self.start is None or self.start == self.end:
            return None
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        local = now_utc.replace(tzinfo=dt.timezone.utc).astimezone(zone)
        t = local.time().replace(tzinfo=None)
        wraps = self.start > self.end
        quiet = (t >= self.start or t < self.end) if wraps else (self.start <= t < self.end)
        if not quiet:
            return None
        end_day = local.date() + dt.timedelta(days=1) if wraps and t >= self.start else local.date()
        end = dt.datetime.combine(end_day, self.end, tzinfo=zone)
        return end.astimezone(dt.timezone.utc).replace(tzinfo=None)


def check(
    suppressed: dict[tuple[str, str], str], message: Message, communication: Communication, quiet: QuietHours, now: dt.datetime
) -> Verdict:
    """``suppressed`` is what ``suppressions_for`` read for the message's chunk just before."""
    customer, channel = message.customer, message.channel
    problem = reachable(customer, channel, suppressed, consent_purpose(communication))
    if problem:
        if message.purpose == STATEMENT and channel == "email" and reachable(customer, "print", suppressed) is None:
            return Verdict("reroute", f"rerouted to print at send time: {problem}", channel="print")
        return Verdict("suppress", f"{problem} at send time")
    # A critical communication (the statement run) bypasses quiet hours with all its messages,
    # its SMS payment reminders included.
    if not communication.critical and (channel == "sms" or communication.kind == "marketing"):
        until = quiet.ends(now, customer.timezone)
        if until is not None:
            return Verdict("defer", f"quiet hours {quiet.spec} in the customer's time zone", until=until)
    return SEND


def consent_purpose(communication: Communication) -> str:
    """Marketing needs marketing consent; statements, bills and reminders need service consent."""
    return "marketing" if communication.kind == "marketing" else "service"


def fallback_channel(communication: Communication, message: Message) -> str | None:
    """The channel a permanently failed message goes to instead (e.g. e-mail hard bounce → print)."""
    target = communication.config.get("fallback", {}).get(message.channel)
    if target == "print" and reachable(message.customer, "print", {}) is not None:
        return None
    return target
