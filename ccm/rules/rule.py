"""A parsed rule and the customer values it needs, loaded with the same SQL expressions
the compiled condition uses."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.rules import tree as t
from ccm.rules.fields import FIELDS
from ccm.rules.parse import parse
from ccm.rules.python import Condition, compile_python
from ccm.rules.sql import SegmentClause, compile_sql
from ccm.models import Customer


@dataclass(frozen=True)
class Rule:
    text: str
    tree: t.Node = field(repr=False)

    @classmethod
    def parse(cls, text: str, *, segments: Collection[str] | None = None) -> "Rule":
        return cls(text, parse(text, segments=segments))

    @property
    def fields(self) -> set[str]:
        return {node.spec.name for node in t.walk(self.tree) if isinstance(node, t.Field)}

    @property
    def segments(self) -> set[str]:
        return {node.name for node in t.walk(self.tree) if isinstance(node, t.InSegment)}

    @property
    def uses_attributes(self) -> bool:
        return any(isinstance(node, t.Attribute) for node in t.walk(self.tree))

    def to_sql(self, dialect: str, *, today: dt.date | None = None, segment_clause: SegmentClause | None = None):
        return compile_sql(self.tree, dialect, today=today, segment_clause=segment_clause)

    def to_python(self, *, today: dt.date | None = None) -> Condition:
        return compile_python(self.tree, today)


def values_columns(rules: Iterable[Rule], segment_clause: SegmentClause | None = None) -> list[Any]:
    """Labelled columns that load what ``rules`` read: fields, attributes, segment membership."""
    rules = list(rules)
    names = sorted(set().union(*(rule.fields for rule in rules))) if rules else []
    columns: list[Any] = [Customer.id.label("id"), Customer.external_id.label("external_id"), Customer.attributes.label("attributes")]
    columns += [FIELDS[name].expression().label(name) for name in names]
    segment_names = sorted(set().union(*(rule.segments for rule in rules))) if rules else []
    if segment_names and segment_clause is None:
        raise ValueError("in_segment() needs the segments of a database")
    columns += [segment_clause(name).label(f"segment:{name}") for name in segment_names]
    return columns


def to_values(row: Any) -> dict[str, Any]:
    """One loaded row as the dict a compiled rule reads."""
    values = dict(row._mapping)
    values["segments"] = {key[8:] for key, value in list(values.items()) if key.startswith("segment:") and value}
    return values


def load_values(
    session: Session, rules: Iterable[Rule], *, where: Any = None, segment_clause: SegmentClause | None = None,
    batch: int = 5000,
) -> Iterator[dict[str, Any]]:
    """The values of every customer (or those matching ``where``), in id order, streamed."""
    query = select(*values_columns(rules, segment_clause)).order_by(Customer.id)
    if where is not None:
        query = query.where(where)
    for row in session.execute(query.execution_options(yield_per=batch)):
        yield to_values(row)
