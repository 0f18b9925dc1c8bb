"""The per-render state that template globals and filters read.

A ``ContextVar`` rather than Jinja context variables, so that macros imported
without context still format and translate for the current customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from babel import Locale

__all__ = ["RenderState", "current_state"]


@dataclass(frozen=True)
class RenderState:
    """What one render formats and translates with."""

    locale: Locale
    timezone: ZoneInfo
    catalog: Mapping[str, str] = field(default_factory=dict)
    slots: Mapping[str, str] = field(default_factory=dict)
    rtl: bool = False  # a right-to-left render: inserted values are printed as isolates


_STATE: ContextVar[RenderState | None] = ContextVar("documents_render_state", default=None)


def current_state() -> RenderState:
    """The state of the render in progress (English/UTC outside a render)."""
    return _STATE.get() or RenderState(Locale("en", "US"), ZoneInfo("UTC"))


def push(state: RenderState) -> object:
    """Make ``state`` current; returns a token for :func:`pop`."""
    return _STATE.set(state)


def pop(token: object) -> None:
    """Restore the state that was current before :func:`push`."""
    _STATE.reset(token)  # type: ignore[arg-type]
