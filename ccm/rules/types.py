"""Value types of the rule language and how attribute values are coerced to them.

Every value is one of: number (double precision everywhere: Python float, SQLite REAL,
PostgreSQL double precision), text, bool (yes/no), time (a UTC timestamp), or missing
(None / SQL NULL). Custom attributes have no fixed type (``any``); the place they are
used decides the type, and a value that does not fit becomes missing:

- number: a JSON number (below 1e300), or text of up to 30 characters that is a plain
  decimal number ("42", "-3.5", ".5");
- text: a JSON string (a JSON number is not text: "42" matches, 42 does not);
- bool: JSON true/false, or the text "true", "yes" (true) / "false", "no" (false).
"""
from __future__ import annotations

import re

NUMBER, TEXT, BOOL, TIME, ANY = "number", "text", "bool", "time", "any"
NUMERIC_TEXT = r"-?([0-9]+\.?[0-9]*|\.[0-9]+)"
MAX_NUMERIC_TEXT = 30  # longer digit strings are not numbers (they could overflow a double)
MAX_ATTRIBUTE_NUMBER = 1e300  # larger JSON numbers are missing (PostgreSQL would refuse them as doubles)
_NUMERIC_TEXT = re.compile(NUMERIC_TEXT)
MOD_LIMIT = 1e18  # % works on whole numbers below this (64-bit integers in SQL)
# * and / are defined only for operands of a magnitude within [OPERAND_MIN, OPERAND_LIMIT) (or 0):
# then the result stays within (1e-300, 1e300), where PostgreSQL neither overflows nor
# underflows (both are errors there, while Python and SQLite give inf or 0). Outside, the
# result is missing, the same on every side: 1e299 / 1e-10 and 1e-200 * 1e-200 are missing.
OPERAND_LIMIT = 1e150
OPERAND_MIN = 1e-150
TRUE_WORDS, FALSE_WORDS = ("true", "yes"), ("false", "no")


def as_number(value: object) -> float | None:
    kind = type(value)
    if kind is float:
        return value if -MAX_ATTRIBUTE_NUMBER < value < MAX_ATTRIBUTE_NUMBER else None  # NaN and inf: missing
    if value is None or kind is bool:
        return None
    if isinstance(value, str):
        return float(value) if len(value) <= MAX_NUMERIC_TEXT and _NUMERIC_TEXT.fullmatch(value) else None
    try:
        number = float(value)  # int, Decimal (the database's types), other numbers
    except (TypeError, ValueError, OverflowError):
        return None
    return number if -MAX_ATTRIBUTE_NUMBER < number < MAX_ATTRIBUTE_NUMBER else None


def in_operand_range(number: float) -> bool:
    """Whether ``number`` may be an operand of * and / (see ``OPERAND_LIMIT``)."""
    magnitude = abs(number)
    return magnitude == 0 or OPERAND_MIN <= magnitude < OPERAND_LIMIT


def as_text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in TRUE_WORDS:
            return True
        if value in FALSE_WORDS:
            return False
    return None


COERCE = {NUMBER: as_number, TEXT: as_text, BOOL: as_bool}
