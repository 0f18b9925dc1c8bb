"""When a message that failed for a transient reason is tried again."""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """When a transient failure is tried again, from ``[delivery] retry_base_seconds``,
    ``retry_cap_seconds`` and ``[ccm] max_attempts``.

    Exponential backoff with *equal* jitter: after attempt ``n`` the ceiling is
    ``min(cap, base * 2 ** (n - 1))`` and the wait is uniform between half the ceiling and
    the ceiling. Half is fixed so that a retry never comes right back (a greylisting server
    would refuse it again), the random half spreads the retries of a whole chunk that failed
    together (a relay that was down) instead of sending them back at the same second. After
    ``max_attempts`` attempts the message is dead.
    """

    base_seconds: float
    cap_seconds: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: dict) -> RetryPolicy:
        delivery = settings["delivery"]
        return cls(delivery["retry_base_seconds"], delivery["retry_cap_seconds"], settings["ccm"]["max_attempts"])

    def ceiling(self, attempt: int) -> float:
        """The longest wait after ``attempt`` (1 for the first send)."""
        return float(min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1)))

    def backoff(self, attempt: int, rng: random.Random | None = None, asked: float | None = None) -> dt.timedelta:
        """The wait after ``attempt``, and at least what the provider ``asked`` (its
        Retry-After, in seconds) up to the cap."""
        ceiling = self.ceiling(attempt)
        wait = (rng or random).uniform(ceiling / 2, ceiling)
        return dt.timedelta(seconds=max(wait, min(float(asked or 0), float(self.cap_seconds))))

    def gives_up(self, attempts: int) -> bool:
        """True once a message has had all its attempts."""
        return attempts >= self.max_attempts
