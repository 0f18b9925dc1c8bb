"""Field validators: table-driven, each value to its normalised form or to an error."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ccm import field_values as v
from ccm.field_values import FieldError

BAD = object()  # marks a value that must raise FieldError


def check(func, value, expected, **kwargs):
    if expected is BAD:
        with pytest.raises(FieldError) as info:
            func(value, **kwargs)
        assert info.value.reason and len(info.value.reason) < 120
        return info.value
    assert func(value, **kwargs) == expected
    return None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("  Ada Lovelace ", "Ada Lovelace"),
        ("line1\r\nline2", "line1 line2"),
        ("tab\there", "tab here"),
        ("nul\x00byte", "nul byte"),
        ("sep\u2028arator", "sep arator"),
        ("<b>Bold</b> & co", "<b>Bold</b> & co"),
        ("张伟 👩‍👩‍👧", "张伟 👩‍👩‍👧"),
        ("x" * 200, "x" * 200),
        ("x" * 201, BAD),
        ("", BAD),
        ("  \r\n ", BAD),
        (None, BAD),
        (["list"], BAD),
        (12345, "12345"),
    ],
)
def test_required_text(value, expected):
    check(v.text, value, expected, field="name", max_length=200, required=True)


def test_optional_text_empty_is_none():
    assert v.text("   ", "city", max_length=100) is None
    assert v.text(None, "city", max_length=100) is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Ada@Example.COM", "Ada@example.com"),
        ("  bob@example.org ", "bob@example.org"),
        ("user+tag@sub.example.co.uk", "user+tag@sub.example.co.uk"),
        ("张伟@例子.中国", "张伟@例子.中国"),
        ("", None),
        ("not-an-email", BAD),
        ("a@b", BAD),
        ("two@@example.com", BAD),
        ("x" * 250 + "@example.com", BAD),
        ("ada@example.com\r\nBcc: evil@example.com", BAD),
    ],
)
def test_email(value, expected):
    check(v.email, value, expected)


def test_email_reason_does_not_echo_the_address():
    error = check(v.email, "secret.person@@example.com", BAD)
    assert "secret.person" not in error.reason


@pytest.mark.parametrize(
    "value, region, expected",
    [
        ("+1 201-555-0123", None, "+12015550123"),
        ("(201) 555-0123", "US", "+12015550123"),
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+86 138 0013 8000", "US", "+8613800138000"),
        ("2015550123", None, BAD),
        ("+1 000", None, BAD),
        ("call me", "US", BAD),
        ("", "US", None),
    ],
)
def test_phone(value, region, expected):
    check(v.phone, value, expected, region=region)


@pytest.mark.parametrize(
    "value, expected",
    [("Europe/Paris", "Europe/Paris"), ("asia/shanghai", "Asia/Shanghai"), ("UTC", "UTC"), ("", "UTC"),
     ("Mars/Olympus", BAD), ("../../etc/passwd", BAD)],
)  # fmt: skip
def test_timezone(value, expected):
    check(v.timezone, value, expected, default="UTC")


@pytest.mark.parametrize(
    "value, expected",
    [("en_US", "en_US"), ("en-us", "en_US"), ("zh-CN", "zh_Hans_CN"), ("zh_CN", "zh_Hans_CN"),
     ("zh_Hans_CN", "zh_Hans_CN"), ("fr", "fr"), ("", "en_US"), ("xx_YY", BAD), ("english", BAD)],
)  # fmt: skip
def test_locale(value, expected):
    check(v.locale, value, expected, default="en_US")


@pytest.mark.parametrize(
    "value, expected",
    [("ar", "ar"), ("ar_EG", "ar_EG"), ("ar-SA", "ar_SA"), ("ar_AE", "ar_AE"), ("he", "he"), ("he-IL", "he_IL"),
     ("iw", "he_IL"), ("iw_IL", "he_IL")],
)
def test_arabic_and_hebrew_are_accepted(value, expected):
    """Documents are laid out right to left in these (issue 13)."""
    check(v.locale, value, expected, default="en_US")


@pytest.mark.parametrize("value", ["fa", "fa_IR", "ur", "ur_PK", "yi", "ps", "ckb", "sd", "dv"])
def test_other_right_to_left_locales_are_refused_until_documents_support_them(value):
    """No catalog, layout or number forms checked for them yet: they would print wrong (issue 13)."""
    error = check(v.locale, value, BAD, default="en_US")
    assert error.field == "locale"
    assert error.reason == "right-to-left locales other than Arabic and Hebrew are not supported yet: documents would print wrong"


@pytest.mark.parametrize(
    "value, expected",
    [("us", "US"), ("CN", "CN"), (" gb ", "GB"), ("", None), ("USA", BAD), ("ZZ", BAD), ("EU", BAD), ("001", BAD)],
)
def test_country(value, expected):
    check(v.country, value, expected)


@pytest.mark.parametrize(
    "value, expected",
    [("usd", "USD"), ("CNY", "CNY"), ("JPY", "JPY"), ("", None), ("XXX", BAD), ("US", BAD), ("EURO", BAD)],
)
def test_currency(value, expected):
    check(v.currency, value, expected)


@pytest.mark.parametrize(
    "value, code, expected",
    [
        ("1234.56", "USD", Decimal("1234.56")),
        ("-12.5", "USD", Decimal("-12.50")),
        ("+3", "USD", Decimal("3.00")),
        (" 0.10 ", "USD", Decimal("0.10")),
        ("1.500", "USD", Decimal("1.50")),  # trailing zeros are not extra precision
        (Decimal("7.25"), "USD", Decimal("7.25")),
        (42, "USD", Decimal("42.00")),
        ("1234", "JPY", Decimal("1234")),
        ("1.5", "JPY", BAD),
        ("1.005", "USD", BAD),
        ("1.005", "BHD", Decimal("1.005")),
        ("1,234.56", "USD", BAD),
        ("1e3", "USD", BAD),
        ("NaN", "USD", BAD),
        ("inf", "USD", BAD),
        (Decimal("NaN"), "USD", BAD),
        ("899999999999999.99", "USD", Decimal("899999999999999.99")),
        ("900000000000000", "USD", BAD),
        ("-900000000000000", "USD", BAD),
        ("12 USD", "USD", BAD),
        ("", "USD", BAD),
        (True, "USD", BAD),
        ("0.333333", None, Decimal("0.333333")),
    ],
)
def test_money(value, code, expected):
    check(v.money, value, expected, field="amount", currency_code=code)


def test_money_is_never_float():
    assert type(v.money("0.1", "amount", currency_code="USD")) is Decimal
    assert v.format_money(Decimal("12.3"), "USD") == "12.30"
    assert v.format_money(Decimal("1200"), "JPY") == "1200"


@pytest.mark.parametrize(
    "value, expected",
    [("2026-11-05", dt.date(2026, 11, 5)), ("2026-02-30", BAD), ("05/11/2026", BAD), ("2026-11-5", BAD),
     ("20261105", BAD), ("", BAD)],
)  # fmt: skip
def test_date(value, expected):
    check(v.date, value, expected, field="due_date")


@pytest.mark.parametrize(
    "value, expected",
    [("2026-11-05T14:30:00Z", dt.datetime(2026, 11, 5, 14, 30)), ("2026-11-05T22:30:00+08:00", dt.datetime(2026, 11, 5, 14, 30)),
     ("2026-11-05", dt.datetime(2026, 11, 5)), ("", None), ("yesterday", BAD)],
)  # fmt: skip
def test_datetime_utc(value, expected):
    check(v.datetime_utc, value, expected, field="consent_at")


@pytest.mark.parametrize(
    "value, expected", [("2026-11", "2026-11"), ("2026-13", BAD), ("2026-1", BAD), ("2026-11-01", BAD), ("", BAD)]
)
def test_period(value, expected):
    check(v.period, value, expected)


@pytest.mark.parametrize(
    "value, expected",
    [("yes", True), ("No", False), ("TRUE", True), ("false", False), ("1", True), ("0", False), ("", None),
     (True, True), (0, False), ("maybe", BAD), (2, BAD)],
)  # fmt: skip
def test_boolean(value, expected):
    check(v.boolean, value, expected, field="paperless")


@pytest.mark.parametrize("value, expected", [("email", "email"), ("SMS", "sms"), ("print", "print"), ("", None), ("fax", BAD)])
def test_channel(value, expected):
    check(v.channel, value, expected)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("yes", {"service": True, "marketing": True}),
        ("no", {"service": False, "marketing": False}),
        ("service", {"service": True, "marketing": False}),
        ("service;marketing", {"service": True, "marketing": True}),
        ("Marketing", {"service": False, "marketing": True}),
        (["service"], {"service": True, "marketing": False}),
        ({"service": True, "marketing": False}, {"service": True, "marketing": False}),
        ({"marketing": True}, {"service": False, "marketing": True}),
        (True, {"service": True, "marketing": True}),
        ("", None),
        (None, None),
        ("spam", BAD),
        ({"spam": True}, BAD),
    ],
)
def test_consent(value, expected):
    check(v.consent, value, expected, field="consent_email")


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [("62701", "US", "62701"), ("62701-1234", "US", "62701-1234"), ("sw1a  1aa", "GB", "SW1A 1AA"), ("100000", "CN", "100000"),
     ("10115", "DE", "10115"), ("ab-12", None, "AB-12"), ("HK-1", "HK", "HK-1")],
)
def test_postal_codes_in_their_countrys_format(raw, country, expected):
    assert v.postal_code(raw, country_code=country) == expected


@pytest.mark.parametrize(
    ("raw", "country", "reason"),
    [("=HYPERLINK(1)", None, "only letters, digits, spaces and hyphens"), ("+1 555", "US", "only letters"),
     ("@SUM", None, "only letters"), ("ABCDE", "US", "not a postal code of US (for example 95014)"),
     ("1234", "DE", "not a postal code of DE"), ("62701\u202e", "US", "only letters")],
)
def test_postal_codes_that_are_refused(raw, country, reason):
    with pytest.raises(v.FieldError) as refused:
        v.postal_code(raw, country_code=country)
    assert refused.value.field == "postal_code" and reason in refused.value.reason
