"""Template filters and globals: money, dates, numbers, gettext and slots.

All of them read the current render's locale and time zone (see
``render_state``). A bad value raises :class:`RenderError` naming the filter;
the sandbox adds the template name and line.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from babel import dates, numbers
from markupsafe import Markup

from .errors import RenderError
from .limits import check_printf
from .render_state import current_state

__all__ = ["FILTERS", "gettext", "slot"]


def gettext(msgid: str, **params: Any) -> str:
    """Translate ``msgid``; fill ``%(name)s`` placeholders from ``params``."""
    text = current_state().catalog.get(msgid, msgid)
    if not params:
        return text
    check_printf(text, params)
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


def money(amount: Any, currency: str) -> str:
    """Format an amount (Decimal, int or numeric string; never float) in ``currency``."""
    value = _decimal("money", amount)
    try:
        return numbers.format_currency(value, str(currency), locale=current_state().locale)
    except (ValueError, TypeError) as error:
        raise RenderError(f"money: bad currency {str(currency)[:8]!r}") from None


def format_date(value: Any, format: str = "medium") -> str:
    """Format a date (or the local date of a datetime) for the render's locale."""
    state = current_state()
    if isinstance(value, datetime):
        value = _aware(value).astimezone(state.timezone).date()
    day = _date("date", value)
    return _babel("date", dates.format_date, day, format=format, locale=state.locale)


def format_datetime(value: Any, format: str = "medium") -> str:
    """Format a datetime in the render's time zone (naive datetimes are UTC)."""
    state = current_state()
    moment = _datetime("datetime", value)
    return _babel("datetime", dates.format_datetime, moment, format=format,
                  tzinfo=state.timezone, locale=state.locale)


def format_number(value: Any) -> str:
    """Format a number with the locale's grouping and decimal signs."""
    return _babel("number", numbers.format_decimal, _number("number", value),
                  locale=current_state().locale)


def format_percent(value: Any) -> str:
    """Format a ratio as a percentage (0.25 -> 25%)."""
    return _babel("percent", numbers.format_percent, _number("percent", value),
                  locale=current_state().locale)


FILTERS = {
    "money": money,
    "date": format_date,
    "datetime": format_datetime,
    "number": format_number,
    "percent": format_percent,
}


def _babel(filter_name: str, function: Any, value: Any, **kwargs: Any) -> str:
    try:
        return str(function(value, **kwargs))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise RenderError(f"{filter_name}: cannot format a {type(value).__name__}") from None


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
