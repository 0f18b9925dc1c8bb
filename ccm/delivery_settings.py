"""The delivery policy's settings as values, parsed when the settings load (a bad one is an
error at start) and used by the runs: quiet hours in the customer's time zone, the
marketing frequency cap, and the rate limits per channel."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*d\s*$")


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


@dataclass(frozen=True)
class Cap:
    messages: int
    days: int

    @classmethod
    def parse(cls, spec: str) -> "Cap | None":
        """``"2/7d"``; empty means no cap."""
        if not spec.strip():
            return None
        match = _SPEC.match(spec)
        if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
            raise ValueError(f"marketing_cap must look like 2/7d (messages / days), got {spec!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def reason(self) -> str:
        return f"frequency cap ({self.messages} marketing messages in {self.days} days)"


def check_spec(kind: str, spec: str) -> None:
    """Raise ValueError naming the channel when a limit does not parse."""
    try:
        parse_many(spec)
    except ValueError:
        raise ValueError(f"limits.{kind}: expected e.g. \"10/second; 50000/day\", got {spec!r}") from None
