"""The data a Typst template gets: the render's context made JSON, formatted by the engine.

Typst formats nothing itself: every amount, date and number arrives formatted by Babel in
the customer's locale, beside its plain value, so a Typst document and an HTML one say the
same thing the same way:

- a ``Decimal`` is ``{"value": "-12.30", "text": "-$12.30", "negative": true}``: ``text``
  in the currency of the nearest ``currency`` above it (a statement's lines take their
  statement's), else as a number;
- a date is ``{"iso", "short", "medium", "long"}``; a datetime ``{"iso", "text"}`` in the
  customer's time zone;
- a QR code (an SVG ``data:`` URL, as ``links.pay_qr`` is) becomes the SVG's text, for
  ``image(bytes(...))``;
- strings stay strings; in a right-to-left render each is a first-strong isolate, as every
  value the HTML path inserts.

Beside the context: ``locale``, ``lang``, ``region``, ``dir`` and ``t`` (the locale's
catalogue, msgid -> text, for the library's ``tr``).
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .bidi import isolate, isolated
from .formatting import format_date, format_datetime, format_number, money
from .render_state import RenderState, current_state, pop, push

__all__ = ["typst_data"]

SVG_DATA = "data:image/svg+xml"


def typst_data(context: Mapping[str, Any], state: RenderState) -> dict[str, Any]:
    """``context`` as a Typst template's data, formatted for ``state``'s customer. Its
    ``slots`` name the block each slot shows (a template's name, or None)."""
    token = push(state)
    try:
        data = {key: _value(value, None) for key, value in context.items() if key != "slots"}
    finally:
        pop(token)
    data.update(locale=str(state.locale), lang=state.locale.language, region=state.locale.territory or "",
                dir="rtl" if state.rtl else "ltr", t=dict(state.catalog),
                slots={str(slot): str(block) if block else None for slot, block in (context.get("slots") or {}).items()})
    return data


def _value(value: Any, currency: str | None) -> Any:
    kind = type(value)
    if kind is str:
        if value.startswith(SVG_DATA):
            return _svg(value)
        return isolated(value) if current_state().rtl else isolate(value)
    if value is None or kind is bool or kind is int or kind is float:
        return value
    if isinstance(value, Decimal):
        text = money(value, currency) if currency else format_number(value)
        return {"value": str(value), "text": text, "negative": value < 0}
    if isinstance(value, datetime):
        return {"iso": value.isoformat(), "text": format_datetime(value)}
    if isinstance(value, date):
        return {"iso": value.isoformat(), "short": format_date(value, "short"), "medium": format_date(value, "medium"),
                "long": format_date(value, "long")}
    if isinstance(value, Mapping):
        inner = value.get("currency") if isinstance(value.get("currency"), str) else currency
        return {str(key): _value(item, inner) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(item, currency) for item in value]
    if hasattr(value, "__iter__") and hasattr(value, "__getitem__"):  # a mapping-like helper (the links)
        return {str(key): _value(value[key], currency) for key in value}
    return str(value)


def _svg(uri: str) -> str:
    """The SVG text of a ``data:image/svg+xml`` URL (base64 or percent-encoded)."""
    header, _, payload = uri.partition(",")
    if header.endswith(";base64"):
        return base64.b64decode(payload).decode("utf-8")
    return urllib.parse.unquote(payload)
