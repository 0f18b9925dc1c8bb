"""How big a value or a document a template may build: the sizes the bounded sandbox
(``bounded_sandbox``) and its filters (``bounded_filters``) check *before* building,
so that no template takes all memory before the render deadline could stop it.

- A value (string, list) has at most ``MAX_SEQUENCE`` characters or items, an integer
  at most ``MAX_INT_BITS`` bits, a ``%`` format no width above ``MAX_SEQUENCE``.
- One render writes at most ``MAX_OUTPUT`` characters (unless the environment sets
  another limit), counting what macros, call blocks and ``{% set %}`` captures write
  as well as the document itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2.sandbox import SecurityError
from jinja2.utils import Namespace

__all__ = ["MAX_EXPONENT", "MAX_INT_BITS", "MAX_OUTPUT", "MAX_SEQUENCE", "OutputBudget", "OutputLimitExceeded",
           "check_printf", "check_size", "current_budget", "output_budget", "text_size"]

MAX_SEQUENCE = 1_000_000  # characters or items one value may have
MAX_EXPONENT = 1_000
MAX_INT_BITS = 64_000  # about 19,000 decimal digits
MAX_OUTPUT = 20_000_000  # characters one render may write (about 20 MB of text)


class OutputLimitExceeded(SecurityError):
    """A render wrote more than its output budget."""


class OutputBudget:
    """The characters a render may still write."""

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise OutputLimitExceeded(f"output above {self.limit:,} characters refused (a loop writing without end?)")


_BUDGET: ContextVar[OutputBudget | None] = ContextVar("documents_output_budget", default=None)


def current_budget() -> OutputBudget:
    """The budget of the render in progress (a fresh one outside a render)."""
    return _BUDGET.get() or OutputBudget(MAX_OUTPUT)


@contextmanager
def output_budget(limit: int) -> Iterator[OutputBudget]:
    """The budget every output buffer of the render in this block spends from."""
    budget = OutputBudget(limit)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def text_size(value: Any, limit: int = MAX_SEQUENCE) -> int:
    """About how many characters ``str(value)`` has; stops counting once above ``limit``
    (a list of a million references to one long string is cheap to hold, not to print)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, Namespace):
        value = value._Namespace__attrs  # type: ignore[attr-defined]
    if isinstance(value, Mapping):
        value = [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple, set, frozenset)):
        total = 2
        for item in value:
            total += text_size(item, limit - total) + 4  # quotes and separator
            if total > limit:
                break
        return total
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 1
    return 32  # numbers, dates, macros, undefined: a short text


def check_size(size: int) -> None:
    """Refuse to build a value of ``size`` characters or items above ``MAX_SEQUENCE``."""
    if size > MAX_SEQUENCE:
        raise SecurityError(f"a value longer than {MAX_SEQUENCE:,} refused")


_PRINTF_WIDTH = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*|\*)(?:\.(\d*|\*))?")


def check_printf(template: str, values: Any = ()) -> None:
    """Refuse a ``%`` format whose widths or precisions would build a huge string."""
    for width, precision in _PRINTF_WIDTH.findall(template):
        if "*" in (width, precision):
            raise SecurityError("a width taken from the arguments (%*d) refused")
        for number in (width, precision):
            if number and int(number) > MAX_SEQUENCE:
                raise SecurityError(f"a width above {MAX_SEQUENCE:,} refused")
    check_size(len(template) + text_size(values))
