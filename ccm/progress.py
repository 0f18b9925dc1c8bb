"""Progress for long commands: a bar on a terminal, plain lines otherwise (logs, CI)."""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from tqdm import tqdm


class Progress:
    """Count work done towards a total; ``advance(n)`` after each piece."""

    def __init__(self, total: int, label: str, *, unit: str = "msg", stream: TextIO | None = None, every_seconds: float = 5.0) -> None:
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.bar = tqdm(total=total, desc=label, unit=unit, file=self.stream, leave=True) if self.stream.isatty() else None
        self.every, self.last = every_seconds, 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif time.monotonic() - self.last >= self.every or self.done >= self.total:
            self.last = time.monotonic()
            print(f"{self.label}: {self.done}/{self.total}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NoProgress:
    """Stands in for a Progress when nothing should be shown (``--json``, nothing to do)."""

    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(total: int, label: str, *, enabled: bool = True) -> Progress | NoProgress:
    return Progress(total, label) if enabled and total else NoProgress()


ProgressFactory = Callable[[int, str], Progress]
