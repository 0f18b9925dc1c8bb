"""The checked tree of a rule: typed nodes, each with the column it came from.

``parse`` (``ccm.rules.parse``) builds it from Python's ``ast``; ``ccm.rules.sql`` and
``ccm.rules.python`` compile it. Conditions (comparisons, and/or/not, helpers that answer
yes/no) are never missing: a comparison with a missing value is false.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ccm.rules.fields import FieldSpec


@dataclass(frozen=True)
class Node:
    column: int


# Values (may be missing)
@dataclass(frozen=True)
class Literal(Node):
    value: float | str | bool | dt.datetime
    type: str


@dataclass(frozen=True)
class Field(Node):
    spec: FieldSpec

    @property
    def type(self) -> str:
        return self.spec.type


@dataclass(frozen=True)
class Attribute(Node):
    key: str
    type: str = "any"


@dataclass(frozen=True)
class Coerce(Node):
    """An attribute (type any) read as ``type``; a value that does not fit is missing."""

    operand: Attribute
    type: str


@dataclass(frozen=True)
class Arithmetic(Node):
    op: str  # + - * / %
    left: Any
    right: Any
    type: str = "number"


@dataclass(frozen=True)
class Negate(Node):
    operand: Any
    type: str = "number"


@dataclass(frozen=True)
class Lower(Node):
    operand: Any
    type: str = "text"


@dataclass(frozen=True)
class DaysSince(Node):
    operand: Any
    type: str = "number"


# Conditions (never missing)
@dataclass(frozen=True)
class Compare(Node):
    op: str  # == != < <= > >=
    left: Any
    right: Any


@dataclass(frozen=True)
class InList(Node):
    operand: Any
    values: tuple
    negated: bool


@dataclass(frozen=True)
class All(Node):
    items: tuple


@dataclass(frozen=True)
class AnyOf(Node):
    items: tuple


@dataclass(frozen=True)
class Not(Node):
    operand: Any


@dataclass(frozen=True)
class Truth(Node):
    """A yes/no value used as a condition: true only when the value is true."""

    operand: Any


@dataclass(frozen=True)
class Present(Node):
    operand: Any


@dataclass(frozen=True)
class TextTest(Node):
    op: str  # contains, starts_with
    text: Any
    part: Any


@dataclass(frozen=True)
class InSegment(Node):
    name: str


CONDITIONS = (Compare, InList, All, AnyOf, Not, Truth, Present, TextTest, InSegment)


def is_condition(node: Node) -> bool:
    return isinstance(node, CONDITIONS)


def walk(node: Any):
    """Every node of the tree, parents first."""
    yield node
    for value in vars(node).values():
        if isinstance(value, Node):
            yield from walk(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, Node):
                    yield from walk(item)
