"""Fixtures of the scheduling tests: an engine with the feedback tests' population."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ccm.imports import import_customers

_spec = importlib.util.spec_from_file_location("ccm_feedback_fixtures", Path(__file__).parent.parent / "feedback" / "conftest.py")
fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = fixtures  # (dataclasses look their module up)
_spec.loader.exec_module(fixtures)


@pytest.fixture
def campaign_engine(make_settings, tmp_path):
    """An engine with customers E000..E059 and S000..S007 (e-mail and SMS), quiet hours off."""
    from ccm.wiring import Engine

    engine = Engine.from_settings(fixtures.feedback_settings(make_settings, tmp_path))
    engine.db.upgrade()
    rows = fixtures.people()
    import_customers(engine.db, fixtures.write_people(tmp_path / "people.csv", rows), rejects_dir=tmp_path, progress=False)
    yield engine
    engine.close()
