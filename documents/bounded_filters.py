"""Jinja's built-in filters and the methods of strings, checked so that none builds a
value above the limits.

Filters that print their input (``string``, ``upper``, ``tojson``...) check the printed
size of a list or mapping first (a list of a million references to one long string is
cheap to hold, not to print) and the length of what they return; filters that take a
width or multiply their input check the size they would build before building it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from jinja2.sandbox import SecurityError
from jinja2.utils import _PassArg

from .limits import MAX_SEQUENCE, check_printf, check_size, text_size

__all__ = ["bounded_filters", "check_text_method"]

PRINTING = ("capitalize", "center", "e", "escape", "forceescape", "format", "indent", "lower", "pprint", "replace",
            "string", "striptags", "title", "tojson", "trim", "truncate", "upper", "urlencode", "urlize", "wordcount",
            "wordwrap")


def bounded_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Replacements for the filters of ``filters`` that could build huge values."""
    checks: dict[str, Callable[..., None]] = {
        "center": _width_check(1), "indent": _indent_check, "format": _format_check, "replace": _replace_check,
        "join": _join_check, "batch": _width_check(1), "slice": _width_check(1),
    }
    bounded = {}
    for name in {*PRINTING, *checks}:
        if name in filters:
            bounded[name] = _bounded(filters[name], checks.get(name), prints=name in PRINTING)
    return bounded


def _bounded(function: Callable[..., Any], check: Callable[..., None] | None, *, prints: bool) -> Callable[..., Any]:
    skip = 0 if _PassArg.from_obj(function) is None else 1  # the context Jinja passes first

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        value = args[skip] if len(args) > skip else None
        if prints and not isinstance(value, str):
            check_size(text_size(value))
        if check is not None:
            check(*args[skip:], **kwargs)
        result = function(*args, **kwargs)
        if isinstance(result, str):
            check_size(len(result))
        return result

    return run


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_SEQUENCE:
        raise SecurityError(f"a width above {MAX_SEQUENCE:,} refused")


def _width_check(position: int) -> Callable[..., None]:
    """Check the argument at ``position`` (after the value) as a width or count."""

    def check(*args: Any, **kwargs: Any) -> None:
        for width in [*args[position:position + 1], *kwargs.values()]:
            _check_width(width)

    return check


def _indent_check(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    _check_width(width)
    if isinstance(width, str):  # the indent is a string: each line grows by its length
        check_size(len(str(value)) * (len(width) + 1))


def _format_check(value: Any, *args: Any, **kwargs: Any) -> None:
    check_printf(str(value), [args, kwargs])


def _replace_check(value: Any, old: Any, new: Any, count: Any = None) -> None:
    text, old, new = str(value), str(old), str(new)
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int):
        times = min(times, max(count, 0))
    check_size(len(text) + times * max(len(new) - len(old), 0))


def _join_check(value: Any, d: Any = "", attribute: Any = None) -> None:
    items = value if isinstance(value, str) else list(value)
    check_size(text_size(items) + len(items) * len(str(d)))


_PADDING = ("center", "ljust", "rjust", "zfill")


def check_text_method(text: str | bytes, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a string method call that would build a value above the limits."""
    if name in ("expandtabs", "translate", "maketrans"):
        raise SecurityError(f"str.{name} is refused")
    if name in _PADDING:
        _width_check(0)(*args, **kwargs)
    elif name == "replace" and len(args) >= 2:
        _replace_check(text, *args[:3])
    elif name == "join" and args:
        _join_check(args[0], text)
