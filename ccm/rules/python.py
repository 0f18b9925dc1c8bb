"""Compile a checked tree to a Python function of one customer's values.

The values are a dict: field name -> stored value (as ``ccm.rules.load`` selects them),
``attributes`` -> the custom attributes, ``segments`` -> names of the segments the customer
is in. Semantics match ``ccm.rules.sql`` exactly (the property test checks it):
numbers are doubles, division or % by zero is missing, so are * and / of operands out of
``OPERAND_LIMIT`` (``ccm.rules.types``), a comparison with a missing value
is false, conditions are never missing.
"""
from __future__ import annotations

import datetime as dt
import operator
from typing import Any, Callable

from ccm.rules import tree as t
from ccm.rules.types import BOOL, COERCE, MOD_LIMIT, NUMBER, TEXT, TIME, as_number, in_operand_range

Row = dict[str, Any]
Value = Callable[[Row], Any]
Condition = Callable[[Row], bool]

COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def compile_python(node: t.Node, today: dt.date | None = None) -> Condition:
    """A function ``values -> bool`` for the condition ``node``."""
    return _Compiler(today or dt.datetime.now(dt.timezone.utc).date()).condition(node)


def _divide(a: float, b: float) -> float | None:
    if b == 0 or not (in_operand_range(a) and in_operand_range(b)):
        return None  # by zero, or a quotient that could leave the range of doubles: missing, as in SQL
    return a / b


def _modulo(a: float, b: float) -> float | None:
    if not (abs(a) < MOD_LIMIT and abs(b) < MOD_LIMIT):
        return None  # beyond 64-bit integers (and inf, nan): missing, as in SQL
    whole_a, whole_b = int(a), int(b)  # toward zero, as SQL casts do
    if whole_b == 0:
        return None
    rest = abs(whole_a) % abs(whole_b)
    return float(-rest if whole_a < 0 else rest)


def _multiply(a: float, b: float) -> float | None:
    if not (in_operand_range(a) and in_operand_range(b)):
        return None  # the product could overflow or underflow a double (an error on PostgreSQL): missing everywhere
    return a * b


ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": _multiply, "/": _divide, "%": _modulo}


class _Compiler:
    def __init__(self, today: dt.date) -> None:
        self.today = today

    # -- values -----------------------------------------------------------------------
    def value(self, node: t.Node) -> Value:
        return getattr(self, f"v_{type(node).__name__}")(node)

    def v_Literal(self, node: t.Literal) -> Value:
        value = node.value
        return lambda row: value

    def v_Field(self, node: t.Field) -> Value:
        name, kind = node.spec.name, node.spec.type
        if kind == NUMBER:
            return lambda row: as_number(row.get(name))
        if kind == BOOL:
            return lambda row: None if row.get(name) is None else bool(row.get(name))
        return lambda row: row.get(name)

    def v_Attribute(self, node: t.Attribute) -> Value:
        key = node.key
        return lambda row: (row.get("attributes") or {}).get(key)

    def v_Coerce(self, node: t.Coerce) -> Value:
        key, coerce = node.operand.key, COERCE[node.type]
        return lambda row: coerce((row.get("attributes") or {}).get(key))

    def v_Arithmetic(self, node: t.Arithmetic) -> Value:
        left, right, op = self.value(node.left), self.value(node.right), ARITHMETIC[node.op]

        def arithmetic(row: Row) -> float | None:
            a = left(row)
            if a is None:
                return None
            b = right(row)
            return None if b is None else op(a, b)

        return arithmetic

    def v_Negate(self, node: t.Negate) -> Value:
        operand = self.value(node.operand)
        return lambda row: None if (v := operand(row)) is None else -v

    def v_Lower(self, node: t.Lower) -> Value:
        operand = self.value(node.operand)
        return lambda row: None if (v := operand(row)) is None else v.translate(ASCII_LOWER)

    def v_DaysSince(self, node: t.DaysSince) -> Value:
        operand, today = self.value(node.operand), self.today
        return lambda row: None if (v := operand(row)) is None else float((today - _day(v)).days)

    # -- conditions -------------------------------------------------------------------
    def condition(self, node: t.Node) -> Callable[[Row], bool]:
        return getattr(self, f"c_{type(node).__name__}")(node)

    def c_Compare(self, node: t.Compare) -> Condition:
        op = COMPARE[node.op]
        if node.left.type == TIME:
            left_time, right_time = self.value(node.left), self.value(node.right)
            left, right = (lambda row: _moment(left_time(row))), (lambda row: _moment(right_time(row)))
        else:
            left, right = self.value(node.left), self.value(node.right)
        if isinstance(node.right, t.Literal):
            constant = node.right.value if node.left.type != TIME else _moment(node.right.value)
            if isinstance(node.left, t.Field) and node.left.type == TEXT and node.op == "==":
                name = node.left.spec.name
                return lambda row: row.get(name) == constant  # a missing value never equals a text
            return _COMPARE_CONSTANT[node.op](left, constant)

        def compare(row: Row) -> bool:
            a = left(row)
            if a is None:
                return False
            b = right(row)
            return b is not None and op(a, b)

        return compare

    def c_InList(self, node: t.InList) -> Condition:
        operand, values, negated = self.value(node.operand), frozenset(node.values), node.negated
        if isinstance(node.operand, t.Field) and node.operand.type == TEXT and not negated:
            name = node.operand.spec.name
            return lambda row: row.get(name) in values  # a missing value is in no list of texts
        if negated:
            return lambda row: (v := operand(row)) is not None and v not in values
        return lambda row: (v := operand(row)) is not None and v in values

    def c_All(self, node: t.All) -> Condition:
        items = [self.condition(item) for item in node.items]
        if len(items) == 2:
            first, second = items
            return lambda row: first(row) and second(row)
        return lambda row: all(item(row) for item in items)

    def c_AnyOf(self, node: t.AnyOf) -> Condition:
        items = [self.condition(item) for item in node.items]
        if len(items) == 2:
            first, second = items
            return lambda row: first(row) or second(row)
        return lambda row: any(item(row) for item in items)

    def c_Not(self, node: t.Not) -> Condition:
        operand = self.condition(node.operand)
        return lambda row: not operand(row)

    def c_Truth(self, node: t.Truth) -> Condition:
        if isinstance(node.operand, t.Field):
            name = node.operand.spec.name
            return lambda row: bool(row.get(name))  # missing is not true
        operand = self.value(node.operand)
        return lambda row: operand(row) is True

    def c_Present(self, node: t.Present) -> Condition:
        operand = self.value(node.operand)
        return lambda row: operand(row) is not None

    def c_TextTest(self, node: t.TextTest) -> Condition:
        text, part = self.value(node.text), self.value(node.part)
        method = str.__contains__ if node.op == "contains" else str.startswith

        def test(row: Row) -> bool:
            a, b = text(row), part(row)
            return a is not None and b is not None and method(a, b)

        return test

    def c_InSegment(self, node: t.InSegment) -> Condition:
        name = node.name
        return lambda row: name in (row.get("segments") or ())


def _compare_constant_factories() -> dict[str, Callable[[Value, Any], Condition]]:
    """``value op constant``, one closure per operator (no operator call per customer)."""

    def eq(left: Value, c: Any) -> Condition:
        return lambda row: (a := left(row)) is not None and a == c

    def ne(left: Value, c: Any) -> Condition:
        return lambda row: (a := left(row)) is not None and a != c

    def lt(left: Value, c: Any) -> Condition:
        return lambda row: (a := left(row)) is not None and a < c

    def le(left: Value, c: Any) -> Condition:
        return lambda row: (a := left(row)) is not None and a <= c

    def gt(left: Value, c: Any) -> Condition:
        return lambda row: (a := left(row)) is not None and a > c

    def ge(left: Value, c: Any) -> Condition:
        return lambda row: (a := left(row)) is not None and a >= c

    return {"==": eq, "!=": ne, "<": lt, "<=": le, ">": gt, ">=": ge}


_COMPARE_CONSTANT = _compare_constant_factories()


def _day(value: dt.datetime | dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _moment(value: Any) -> Any:
    """Times compare as naive UTC datetimes (how the database stores them)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value
