"""Fixtures of the API's tests, each run on SQLite and PostgreSQL: a service account with the roles a test names and its key
(``key_for("service")`` -> request headers), and the weekly deals sent once to a small
population (``deals``), for decisions and reports."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from ccm.imports import import_customers
from ccm.staff import create_key, create_service_account

from shared_population import CAMPAIGN_CYCLE, feedback_settings, people, write_people


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request) -> str | None:
    """Each test of the API runs on SQLite and on PostgreSQL (where one runs)."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


@pytest.fixture
def settings(make_settings, tmp_path: Path, database: str | None) -> dict:
    return make_settings(tmp_path, **({"ccm": {"database_url": database}} if database else {}))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key_for(engine) -> Callable[..., dict[str, str]]:
    """``key_for("service", "marketer")``: headers with a fresh key of a new service account
    holding those roles."""
    made: list[str] = []

    def make(*roles: str, days: int = 30) -> dict[str, str]:
        name = f"system-{len(made)}"
        made.append(name)
        create_service_account(engine, name, roles, actor="test")
        return bearer(create_key(engine, name, days=days, actor="test").key)

    return make


@pytest.fixture
def deals(make_settings, tmp_path: Path, database: str | None):
    """``(app, engine)`` with 60 customers imported and the weekly deals (an A/B test of its
    offer with a hold-out) sent once."""
    from app import create_app
    from ccm.runs import service

    app = create_app(feedback_settings(make_settings, tmp_path, **({"ccm": {"database_url": database}} if database else {})))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    assert import_customers(engine.db, write_people(tmp_path / "people.csv", people()), rejects_dir=tmp_path, progress=False).rejected == 0
    service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
    yield app, engine
    engine.close()
