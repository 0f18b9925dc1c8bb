"""Fixtures of the runs tests: the scheduling tests' engine with the feedback population."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("ccm_scheduling_fixtures", Path(__file__).parent.parent / "scheduling" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _fixtures
_spec.loader.exec_module(_fixtures)
campaign_engine = _fixtures.campaign_engine
