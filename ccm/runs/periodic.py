"""A task repeated from a thread of its own while a block runs: renewing leases and
heartbeats must not wait for a slow message."""
from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class Every:
    """``with Every(10, renew, "lease-run3"):`` calls ``renew()`` every 10 seconds until the
    block ends. A failing call is logged and tried again at the next tick."""

    def __init__(self, seconds: float, action: Callable[[], None], name: str) -> None:
        self.seconds, self.action = seconds, action
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._repeat, name=name, daemon=True)

    def __enter__(self) -> Every:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _repeat(self) -> None:
        while not self.stopped.wait(self.seconds):
            try:
                self.action()
            except Exception:  # the next tick tries again; what it renews still holds meanwhile
                log.warning("%s failed; trying again in %s s", self.thread.name, self.seconds, exc_info=True)
