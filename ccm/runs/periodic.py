"""A task repeated from a thread of its own while a block runs: renewing leases and
heartbeats must not wait for a slow message; and stopping on a signal without hanging."""
from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Callable

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


def set_on_signal(event: threading.Event, *signals: int) -> dict[int, Any]:
    """Set ``event`` when one of ``signals`` arrives (SIGINT and SIGTERM by default); returns
    the handlers it replaced. Call from the main thread.

    A Python signal handler runs in the main thread between two of its steps, perhaps while
    that thread holds the event's own lock (inside ``Event.set`` or ``Event.wait``): setting
    the event in the handler would then wait for itself forever (a pool worker hung so when
    a second SIGTERM came while it handled the first). The handler leaves it to a thread."""
    def handler(*_: object) -> None:
        if not event.is_set():
            threading.Thread(target=event.set, name="signalled", daemon=True).start()

    return {sig: signal.signal(sig, handler) for sig in signals or (signal.SIGINT, signal.SIGTERM)}
