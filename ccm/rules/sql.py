"""Compile a checked tree to a SQLAlchemy condition over ``customers``, for SQLite and
PostgreSQL, with the same results as ``ccm.rules.python``:

- numbers are double precision (money, stored as scaled integers, is divided back);
- ``a / 0`` and ``a % 0`` are NULL (``NULLIF``), so a comparison with them is false;
- a comparison with NULL is NULL, which WHERE treats as false; under ``not`` the condition
  is first made two-valued with ``COALESCE(c, false)``, so ``not (x > 1)`` is true for a
  missing x, as in Python;
- text compares byte for byte (no ordering of text, since collations differ), ``lower``
  folds A-Z only.
"""
from __future__ import annotations

import datetime as dt
import operator
from decimal import Decimal
from typing import Any, Callable

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, String, and_, case, cast, false, func, literal, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from ccm.rules import tree as t
from ccm.rules.types import (
    BOOL, FALSE_WORDS, MAX_ATTRIBUTE_NUMBER, MAX_NUMERIC_TEXT, MOD_LIMIT, NUMBER, OPERAND_LIMIT, OPERAND_MIN, TEXT, TIME, TRUE_WORDS,
)
from ccm.column_types import SCALE

COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
SegmentClause = Callable[[str], ColumnElement]
UPPER, LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
PG_NUMERIC_TEXT = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)$"
# The decimal 1e300, not Decimal(1e300): the double nearest 1e300 is a little above it, and the
# JSON number 1e300 (exact in jsonb's numeric) must be out of range as it is in Python.
PG_MAX_ATTRIBUTE_NUMBER = Decimal(repr(MAX_ATTRIBUTE_NUMBER))


def compile_sql(
    node: t.Node, dialect: str, *, today: dt.date | None = None, segment_clause: SegmentClause | None = None
) -> ColumnElement:
    """A WHERE condition over ``customers`` (NULL means false)."""
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"rules compile for sqlite and postgresql, not {dialect}")
    return _Compiler(dialect, today or dt.datetime.now(dt.timezone.utc).date(), segment_clause).condition(node)


def _operand(value: ColumnElement) -> ColumnElement:
    """``value`` may be an operand of * and / (``ccm.rules.types.in_operand_range``): outside,
    PostgreSQL would fail with "value out of range" where Python and SQLite give inf or 0."""
    magnitude = func.abs(value, type_=Float)  # a double on both databases, so abs() cannot overflow
    return and_(magnitude < literal(OPERAND_LIMIT, Float), or_(magnitude >= literal(OPERAND_MIN, Float), magnitude == literal(0.0, Float)))


def two_valued(clause: ColumnElement) -> ColumnElement:
    return func.coalesce(clause, false(), type_=Boolean)


class _Compiler:
    def __init__(self, dialect: str, today: dt.date, segment_clause: SegmentClause | None) -> None:
        self.pg = dialect == "postgresql"
        self.today = today
        self.segment_clause = segment_clause

    # -- values -----------------------------------------------------------------------
    def value(self, node: t.Node) -> ColumnElement:
        return getattr(self, f"v_{type(node).__name__}")(node)

    def v_Literal(self, node: t.Literal) -> ColumnElement:
        if node.type == BOOL:
            return true() if node.value else false()
        sql_type = {NUMBER: Float(), TEXT: String(), TIME: DateTime()}[node.type]
        return literal(node.value, sql_type)

    def v_Field(self, node: t.Field) -> ColumnElement:
        expression = node.spec.expression()
        if node.spec.type != NUMBER:
            return expression
        number = cast(expression, Float)
        return number / literal(float(SCALE), Float) if node.spec.money else number

    def v_Coerce(self, node: t.Coerce) -> ColumnElement:
        return (self.pg_coerce if self.pg else self.sqlite_coerce)(node.operand.key, node.type)

    def v_Arithmetic(self, node: t.Arithmetic) -> ColumnElement:
        a, b = self.value(node.left), self.value(node.right)
        if node.op == "+":
            return a + b
        if node.op == "-":
            return a - b
        if node.op == "*":
            return case((and_(_operand(a), _operand(b)), a * b), else_=None)
        if node.op == "/":
            return case((and_(_operand(a), _operand(b), b != literal(0.0, Float)), a / b), else_=None)
        if self.pg:
            whole_a, whole_b = cast(func.trunc(a), BigInteger), cast(func.trunc(b), BigInteger)
        else:
            whole_a, whole_b = cast(a, BigInteger), cast(b, BigInteger)
        remainder = cast(whole_a.op("%")(func.nullif(whole_b, 0, type_=BigInteger)), Float)
        limit = literal(MOD_LIMIT, Float)
        return case((and_(a > -limit, a < limit, b > -limit, b < limit), remainder), else_=None)

    def v_Negate(self, node: t.Negate) -> ColumnElement:
        return -self.value(node.operand)

    def v_Lower(self, node: t.Lower) -> ColumnElement:
        operand = self.value(node.operand)
        if self.pg:
            return func.translate(operand, UPPER, LOWER, type_=String)
        return func.lower(operand, type_=String)  # SQLite's lower() folds ASCII only

    def v_DaysSince(self, node: t.DaysSince) -> ColumnElement:
        operand = self.value(node.operand)
        if self.pg:
            days = cast(literal(self.today, Date), Date).op("-", return_type=Integer)(cast(operand, Date))
            return cast(days, Float)
        return func.julianday(self.today.isoformat(), type_=Float) - func.julianday(func.date(operand), type_=Float)

    # -- attributes -------------------------------------------------------------------
    def sqlite_coerce(self, key: str, kind: str) -> ColumnElement:
        from ccm.models import Customer

        path = f'$."{key}"'
        kind_of = func.json_type(Customer.attributes, path, type_=String)
        raw = func.json_extract(Customer.attributes, path)
        if kind == NUMBER:
            text = cast(raw, String)
            unsigned = case((func.substr(text, 1, 1) == "-", func.substr(text, 2)), else_=text)
            numeric_text = and_(
                kind_of == "text",
                func.length(text) <= MAX_NUMERIC_TEXT,
                unsigned != "",
                not_(unsigned.op("GLOB", is_comparison=True)("*[^0-9.]*")),
                unsigned.op("GLOB", is_comparison=True)("*[0-9]*"),
                not_(unsigned.op("GLOB", is_comparison=True)("*.*.*")),
            )
            bound = literal(MAX_ATTRIBUTE_NUMBER, Float)  # no abs(): abs(-2**63) overflows in SQLite
            json_number = and_(kind_of.in_(["integer", "real"]), raw > -bound, raw < bound)
            return case((json_number, cast(raw, Float)), (numeric_text, cast(raw, Float)), else_=None)
        if kind == TEXT:
            return case((kind_of == "text", cast(raw, String)), else_=None)
        words = cast(raw, String)
        return case(
            (kind_of == "true", true()),
            (kind_of == "false", false()),
            (and_(kind_of == "text", words.in_(TRUE_WORDS)), true()),
            (and_(kind_of == "text", words.in_(FALSE_WORDS)), false()),
            else_=None,
        )

    def pg_coerce(self, key: str, kind: str) -> ColumnElement:
        from ccm.models import Customer

        element = Customer.attributes.op("->")(literal(key, String))
        kind_of = func.jsonb_typeof(element, type_=String)
        text = Customer.attributes.op("->>", return_type=String)(literal(key, String))
        if kind == NUMBER:
            numeric_text = and_(kind_of == "string", func.length(text) <= MAX_NUMERIC_TEXT, text.op("~", is_comparison=True)(PG_NUMERIC_TEXT))
            json_number = and_(kind_of == "number", func.abs(cast(text, Numeric)) < literal(PG_MAX_ATTRIBUTE_NUMBER, Numeric))
            return case((json_number, cast(text, Float)), (numeric_text, cast(text, Float)), else_=None)
        if kind == TEXT:
            return case((kind_of == "string", text), else_=None)
        return case(
            (kind_of == "boolean", cast(text, Boolean)),
            (and_(kind_of == "string", text.in_(TRUE_WORDS)), true()),
            (and_(kind_of == "string", text.in_(FALSE_WORDS)), false()),
            else_=None,
        )

    def attribute_present(self, key: str) -> ColumnElement:
        from ccm.models import Customer

        if self.pg:
            kind_of = func.jsonb_typeof(Customer.attributes.op("->")(literal(key, String)), type_=String)
        else:
            kind_of = func.json_type(Customer.attributes, f'$."{key}"', type_=String)
        return two_valued(kind_of != "null")

    # -- conditions -------------------------------------------------------------------
    def condition(self, node: t.Node) -> ColumnElement:
        return getattr(self, f"c_{type(node).__name__}")(node)

    def c_Compare(self, node: t.Compare) -> ColumnElement:
        return COMPARE[node.op](self.value(node.left), self.value(node.right))

    def c_InList(self, node: t.InList) -> ColumnElement:
        operand = self.value(node.operand)
        values = list(node.values)
        return operand.not_in(values) if node.negated else operand.in_(values)

    def c_All(self, node: t.All) -> ColumnElement:
        return and_(*(self.condition(item) for item in node.items))

    def c_AnyOf(self, node: t.AnyOf) -> ColumnElement:
        return or_(*(self.condition(item) for item in node.items))

    def c_Not(self, node: t.Not) -> ColumnElement:
        inner = self.condition(node.operand)
        if isinstance(node.operand, (t.Present, t.InSegment)):
            return not_(inner)  # already two-valued
        return not_(two_valued(inner))

    def c_Truth(self, node: t.Truth) -> ColumnElement:
        if isinstance(node.operand, t.Literal):
            return true() if node.operand.value else false()
        return self.value(node.operand) == true()

    def c_Present(self, node: t.Present) -> ColumnElement:
        if isinstance(node.operand, t.Attribute):
            return self.attribute_present(node.operand.key)
        return self.value(node.operand).is_not(None)

    def c_TextTest(self, node: t.TextTest) -> ColumnElement:
        text, part = self.value(node.text), self.value(node.part)
        if node.op == "contains":
            position = func.strpos(text, part, type_=Integer) if self.pg else func.instr(text, part, type_=Integer)
            return position > 0
        return func.substr(text, 1, func.length(part), type_=String) == part

    def c_InSegment(self, node: t.InSegment) -> ColumnElement:
        if self.segment_clause is None:
            raise ValueError("in_segment() needs the segments of a database")
        return self.segment_clause(node.name)


def sql_value(node: Any, dialect: str, today: dt.date | None = None) -> ColumnElement:
    """The SQL expression of one value node (for tests and explanations)."""
    return _Compiler(dialect, today or dt.date.today(), None).value(node)
