"""Shared fixtures: a fresh SQLite database per test, the app, its CLI runner, the engine.

Every test gets its own folder for the database, the outputs of the channels and the
rejects, so tests never see each other's files.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from ccm.engine import Engine

ROOT = Path(__file__).resolve().parent.parent


def test_settings(tmp_path: Path, **sections: dict) -> dict:
    var = tmp_path / "var"
    settings = {
        "ccm": {"database_url": f"sqlite:///{var}/ccm.db", "var_dir": str(var), "templates_dir": str(ROOT / "templates"), "workers": 1},
        "channels": {
            "email": f"maildir://{var}/maildir",
            "sms": f"file://{var}/sms/outbox.jsonl",
            "print": f"print://{var}/print",
        },
    }
    for section, values in sections.items():
        settings.setdefault(section, {}).update(values)
    return settings


@pytest.fixture
def make_settings():
    """``make_settings(folder, ccm={...}, email={...})``: settings for an engine in ``folder``."""
    return test_settings


@pytest.fixture
def settings(tmp_path: Path) -> dict:
    return test_settings(tmp_path)


@pytest.fixture
def app(settings: dict):
    app = create_app(settings)
    app.extensions["ccm"].db.upgrade()
    yield app
    app.extensions["ccm"].close()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def engine(app) -> Engine:
    return app.extensions["ccm"]
