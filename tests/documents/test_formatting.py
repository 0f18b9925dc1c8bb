"""Filters format with Babel for the customer's actual locale and time zone."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from documents import RenderError, TemplateEnvironment

TEMPLATES = {
    "money.txt": "{{ amount | money('USD') }}",
    "date.txt": "{{ day | date }}|{{ day | date('short') }}",
    "datetime.txt": "{{ moment | datetime('short') }}",
    "number.txt": "{{ value | number }}|{{ ratio | percent }}",
}
ENV = TemplateEnvironment(TEMPLATES.get)


def render(name: str, locale: str, timezone: str = "UTC", **context: object) -> str:
    return ENV.render(name, context, locale=locale, timezone=timezone)


@pytest.mark.parametrize(("locale", "expected"), [
    ("en_US", "-$12,345,678.90"),
    ("zh_CN", "-US$12,345,678.90"),
    ("en_GB", "-US$12,345,678.90"),
    ("de_DE", "-12.345.678,90\xa0$"),
])
def test_money_negative(locale: str, expected: str) -> None:
    assert render("money.txt", locale, amount=Decimal("-12345678.90")) == expected


@pytest.mark.parametrize("amount", [Decimal("9999999999.99"), "9999999999.99", 9999999999])
def test_money_accepts_decimal_string_and_int(amount: object) -> None:
    assert render("money.txt", "en_US", amount=amount).startswith("$9,999,999,999")


@pytest.mark.parametrize("amount", [1.5, "12abc", None, True])
def test_money_rejects_bad_values_naming_the_filter(amount: object) -> None:
    with pytest.raises(RenderError, match="money") as caught:
        render("money.txt", "en_US", amount=amount)
    assert caught.value.template == "money.txt"


@pytest.mark.parametrize(("locale", "expected"), [
    ("en_US", "Dec 21, 2026|12/21/26"),
    ("en_GB", "21 Dec 2026|21/12/2026"),
    ("zh_CN", "2026年12月21日|2026/12/21"),
    ("zh_Hans_CN", "2026年12月21日|2026/12/21"),
    ("de_DE", "21.12.2026|21.12.26"),
])
def test_date_by_locale(locale: str, expected: str) -> None:
    assert render("date.txt", locale, day=date(2026, 12, 21)) == expected
    assert render("date.txt", locale, day="2026-12-21") == expected


def test_datetime_converts_to_render_timezone() -> None:
    moment = datetime(2026, 12, 21, 18, 30)  # naive means UTC
    assert render("datetime.txt", "zh_CN", "Asia/Shanghai", moment=moment) == "2026/12/22 02:30"
    assert render("datetime.txt", "en_US", "America/New_York", moment="2026-12-21T18:30:00Z") == "12/21/26, 1:30\u202fPM"


def test_bad_date_is_render_error() -> None:
    with pytest.raises(RenderError, match="date"):
        render("date.txt", "en_US", day="not a date")


def test_number_and_percent() -> None:
    assert render("number.txt", "de_DE", value=Decimal("1234567.5"), ratio=Decimal("0.25")) == "1.234.567,5|25\xa0%"
    assert render("number.txt", "en_US", value=1234567, ratio=0.125) == "1,234,567|12%"


def test_unknown_timezone_is_render_error() -> None:
    with pytest.raises(RenderError, match="time zone"):
        render("money.txt", "en_US", "Mars/Base", amount=1)
