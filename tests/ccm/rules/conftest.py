"""Fixtures of the rule-language tests: a schema made with ``create_all`` (fast, so the
property test can insert a fresh population per example) on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Iterator

import pytest
from sqlalchemy import case, select

from ccm.db import Database
from ccm.models import Customer, FeedRecord
from ccm.rules import Rule, load_values
from ccm.schema import Base
from ccm.models.segments import CustomerMetrics, Segment, SegmentMember

TODAY = dt.date(2026, 11, 22)


class RuleLab:
    """A database with customers made from plain dicts; evaluates a rule both ways."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.db.create_file()
        Base.metadata.create_all(self.db.engine)
        self.dialect = self.db.engine.dialect.name
        with self.db.session() as session:
            session.add(Segment(name="s1", expression="true"))

    def both(self, expression: str, customers: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        """Customers (external ids) the rule selects in SQL and in Python, in one rolled-back transaction."""
        from ccm.segments.membership import segment_clause

        rule = Rule.parse(expression)
        with self.db.sessions() as session:
            session.begin()
            try:
                self.insert(session, customers)
                clause = segment_clause(session)
                sql = rule.to_sql(self.dialect, today=TODAY, segment_clause=clause)
                in_sql = set(session.scalars(select(Customer.external_id).where(sql)))
                # The same condition as a selected value must agree with WHERE.
                flagged = select(Customer.external_id, case((sql, True), else_=False))
                as_value = {ext for ext, hit in session.execute(flagged) if hit}
                assert as_value == in_sql, expression
                check = rule.to_python(today=TODAY)
                ids = dict(session.execute(select(Customer.id, Customer.external_id)).all())
                in_python = {ids[v["id"]] for v in load_values(session, [rule], segment_clause=clause) if check(v)}
            finally:
                session.rollback()
        return in_sql, in_python

    def insert(self, session: Any, customers: list[dict[str, Any]]) -> None:
        segment = session.scalar(select(Segment).where(Segment.name == "s1"))
        for number, values in enumerate(customers):
            values = dict(values)
            balance, spend, member = values.pop("balance_due", None), values.pop("spend", None), values.pop("s1", False)
            customer = Customer(external_id=f"X{number}", name="n", row_hash="-", **values)
            session.add(customer)
            session.flush()
            if balance is not None:
                session.add(FeedRecord(
                    account=f"A{number}", customer_id=customer.id, period="2026-10", opening_balance=Decimal(0),
                    closing_balance=balance, amount_due=balance, due_date=TODAY, currency="USD",
                    source_file="-", source_line=1, row_hash="-",
                ))
            if spend is not None:
                session.add(CustomerMetrics(customer_id=customer.id, spend=spend))
            if member:
                session.add(SegmentMember(segment_id=segment.id, customer_id=customer.id))
        session.flush()

    def close(self) -> None:
        Base.metadata.drop_all(self.db.engine)
        self.db.dispose()


@pytest.fixture
def sqlite_lab(tmp_path) -> Iterator[RuleLab]:
    lab = RuleLab(f"sqlite:///{tmp_path}/rules.db")
    yield lab
    lab.close()


@pytest.fixture
def postgres_lab(postgres_url: str) -> Iterator[RuleLab]:
    lab = RuleLab(postgres_url)
    yield lab
    lab.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def lab(request) -> RuleLab:
    return request.getfixturevalue("sqlite_lab" if request.param == "sqlite" else "postgres_lab")
