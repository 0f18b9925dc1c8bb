"""Template filters and globals: money, dates, numbers, gettext, slots and isolates.

All of them read the current render's locale and time zone (see
``render_state``). A bad value raises :class:`RenderError` naming the filter;
the sandbox adds the template name and line.

In a right-to-left render (Arabic, Hebrew) every amount, date and number and every
parameter of a translated sentence comes out as a first-strong isolate (``bidi``), and
the ``isolate`` filter does the same for a customer's string printed on its own (a
name, an address line): the surrounding right-to-left text cannot reorder them. In a
left-to-right render they come out exactly as Babel formats them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import dates, numbers
from markupsafe import Markup

from .bidi import isolated
from .errors import RenderError
from .limits import check_printf
from .render_state import RenderState, current_state

__all__ = ["FILTERS", "gettext", "slot"]


def gettext(msgid: str, **params: Any) -> str:
    """Translate ``msgid``; fill ``%(name)s`` placeholders from ``params``."""
    state = current_state()
    text = state.catalog.get(msgid, msgid)
    if not params:
        return text
    check_printf(text, params)
    if state.rtl:
        params = {key: isolated(value) if type(value) is str else value for key, value in params.items()}
    try:
        return text % params
    except (KeyError, ValueError, TypeError) as error:
        raise RenderError(f"_(): bad placeholders in {msgid!r}: {error}") from None


def slot(name: str) -> Markup:
    """The already-rendered, trusted HTML of content slot ``name``."""
    slots = current_state().slots
    if name not in slots:
        raise RenderError(f"unknown slot {name!r}")
    return Markup(slots[name])


def isolate(value: Any) -> Any:
    """In a right-to-left render, ``value`` as a first-strong isolate (so a Latin name or
    ``12 Elm Street`` keeps its order inside Arabic or Hebrew text); else as it is."""
    if not current_state().rtl or value is None:
        return value
    if isinstance(value, Markup):
        return Markup(isolated(str(value)))
    return isolated(value if type(value) is str else str(value))


def money(amount: Any, currency: str) -> str:
    """Format an amount (Decimal, int or numeric string; never float) in ``currency``."""
    value = _decimal("money", amount)
    state = current_state()
    try:
        text = numbers.format_currency(value, str(currency), locale=state.locale)
    except (ValueError, TypeError) as error:
        raise RenderError(f"money: bad currency {str(currency)[:8]!r}") from None
    return isolated(text) if state.rtl else text


def format_date(value: Any, format: str = "medium") -> str:
    """Format a date (or the local date of a datetime) for the render's locale."""
    state = current_state()
    if isinstance(value, datetime):
        value = _aware(value).astimezone(state.timezone).date()
    day = _date("date", value)
    return _babel("date", dates.format_date, day, state, format=format)


def format_datetime(value: Any, format: str = "medium") -> str:
    """Format a datetime in the render's time zone (naive datetimes are UTC)."""
    state = current_state()
    moment = _datetime("datetime", value)
    return _babel("datetime", dates.format_datetime, moment, state, format=format, tzinfo=state.timezone)


def format_number(value: Any) -> str:
    """Format a number with the locale's grouping and decimal signs."""
    return _babel("number", numbers.format_decimal, _number("number", value), current_state())


def format_percent(value: Any) -> str:
    """Format a ratio as a percentage (0.25 -> 25%)."""
    return _babel("percent", numbers.format_percent, _number("percent", value), current_state())


FILTERS = {
    "isolate": isolate,
    "money": money,
    "date": format_date,
    "datetime": format_datetime,
    "number": format_number,
    "percent": format_percent,
}


def _babel(filter_name: str, function: Any, value: Any, state: RenderState, **kwargs: Any) -> str:
    try:
        text = str(function(value, locale=state.locale, **kwargs))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise RenderError(f"{filter_name}: cannot format a {type(value).__name__}") from None
    return isolated(text) if state.rtl else text


def _decimal(filter_name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise RenderError(f"{filter_name}: expected Decimal, int or numeric string, got {type(value).__name__}")
    try:
        result = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise RenderError(f"{filter_name}: not a number (got a {type(value).__name__})") from None
    if not result.is_finite():
        raise RenderError(f"{filter_name}: not a finite number")
    return result


def _number(filter_name: str, value: Any) -> Decimal | float:
    if isinstance(value, float):
        return value
    return _decimal(filter_name, value)


def _date(filter_name: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise RenderError(f"{filter_name}: not a date (got a {type(value).__name__})")


def _datetime(filter_name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return _aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            pass
    raise RenderError(f"{filter_name}: not a datetime (got a {type(value).__name__})")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
