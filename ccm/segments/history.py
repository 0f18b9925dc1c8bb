"""The computed fields of the period before, kept so the studio can show how customers
moved between tiers, ABC codes and lifecycle stages.

No table of its own: each customer's ``attributes`` holds ``computed_period`` (the
reference period of the current computed fields) and ``computed_before`` (the tier, ABC
code and stage of the period before, with that period). A refresh for a new reference
period moves the current values into ``computed_before``; refreshing the same period
again keeps it. A re-import that replaces a customer's attributes forgets it (that
customer then counts as "not known" until the next period).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import String, func, text
from sqlalchemy.orm import Session

from ccm.models import Customer

PERIOD, BEFORE = "computed_period", "computed_before"


def remember_previous(session: Session, reference: str) -> None:
    """Before the computed fields are recomputed for ``reference``: keep the current ones of
    every customer whose values belong to another period."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            f"UPDATE customers SET attributes = coalesce(attributes, '{{}}'::jsonb) || jsonb_build_object('{BEFORE}', "
            f"jsonb_build_object('period', attributes->>'{PERIOD}', 'tier', value_tier, 'abc', abc_code, 'stage', lifecycle_stage)) "
            f"WHERE value_tier IS NOT NULL AND coalesce(attributes->>'{PERIOD}', '') <> CAST(:reference AS text)"
        ), {"reference": reference})
        return
    session.execute(text(
        "UPDATE customers SET attributes = json_set(coalesce(attributes, '{}'), '$." + BEFORE + "', "
        "json_object('period', json_extract(attributes, '$." + PERIOD + "'), 'tier', value_tier, 'abc', abc_code, "
        "'stage', lifecycle_stage)) "
        "WHERE value_tier IS NOT NULL AND coalesce(json_extract(attributes, '$." + PERIOD + "'), '') <> :reference"
    ), {"reference": reference})


def mark_period(session: Session, reference: str) -> None:
    """After the computed fields were recomputed: they belong to ``reference``."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            f"UPDATE customers SET attributes = coalesce(attributes, '{{}}'::jsonb) || jsonb_build_object('{PERIOD}', CAST(:reference AS text)) "
            f"WHERE coalesce(attributes->>'{PERIOD}', '') <> CAST(:reference AS text)"
        ), {"reference": reference})
        return
    session.execute(text(
        "UPDATE customers SET attributes = json_set(coalesce(attributes, '{}'), '$." + PERIOD + "', :reference) "
        "WHERE coalesce(json_extract(attributes, '$." + PERIOD + "'), '') <> :reference"
    ), {"reference": reference})


def previous_of(session: Session, key: str) -> Any:
    """The SQL expression of a customer's ``key`` (tier, abc, stage or period) in the period before."""
    if session.get_bind().dialect.name == "postgresql":
        return Customer.attributes[BEFORE][key].as_string()
    return func.json_extract(Customer.attributes, f"$.{BEFORE}.{key}", type_=String)
