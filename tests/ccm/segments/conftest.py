"""Fixtures of the segment tests: a population with billing history made directly in the
database (fast), on the migrated SQLite of the ``engine`` fixture or on PostgreSQL."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Callable, Iterator

import pytest

from app import create_app
from ccm.wiring import Engine
from ccm.models import Customer, FeedRecord

REFERENCE = "2026-11"


def months_before(period: str, count: int) -> str:
    index = int(period[:4]) * 12 + int(period[5:7]) - 1 - count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def add_customer(session, external_id: str, spends: dict[str, str], *, created: dt.datetime = dt.datetime(2024, 1, 1), **columns) -> Customer:
    """A customer with one feed record per period: ``{"2026-11": "12.50"}`` (debits of the period)."""
    customer = Customer(external_id=external_id, name=external_id, row_hash="-", created_at=created, **columns)
    session.add(customer)
    session.flush()
    for period, amount in spends.items():
        session.add(FeedRecord(
            account=f"ACC-{external_id}", customer_id=customer.id, period=period, opening_balance=Decimal(0),
            closing_balance=Decimal(amount), amount_due=Decimal(amount), due_date=dt.date(2026, 12, 15), currency="USD",
            total_debits=Decimal(amount), source_file="-", source_line=1, row_hash="-",
        ))
    return customer


@pytest.fixture
def add() -> Callable[..., Customer]:
    return add_customer


@pytest.fixture
def pg_engine(make_settings, tmp_path, postgres_url) -> Iterator[Engine]:
    app = create_app(make_settings(tmp_path, ccm={"database_url": postgres_url}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    yield engine
    engine.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request) -> Engine:
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")
