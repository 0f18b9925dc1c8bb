"""The rate limiter's in-process counters, without a thread per 10 ms.

``limits``' memory storage starts a timer thread every 10 ms to forget expired counters;
under load that thread start costs more than the request it guards. Counters are already
expired when read (``MemoryStorage.get``), so this storage only sweeps the leftovers of
clients that never came back, every ``SWEEP_EVERY`` hits. ``ccm-memory://`` is the
default of ``[web] rate_limit_storage``; several web processes share ``redis://`` instead.
"""
from __future__ import annotations

import threading
import time

from limits.storage import MemoryStorage

SWEEP_EVERY = 1000


class LazyMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = ["ccm-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._hits = 0
        self._sweep_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the timer of the base class
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0 and self._sweep_lock.acquire(blocking=False):
            try:
                now = time.time()
                for key, expires in list(self.expirations.items()):
                    if expires <= now:
                        self.get(key)  # forgets it
            finally:
                self._sweep_lock.release()
