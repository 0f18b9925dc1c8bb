"""Fixtures of the decision tests: a decision with an experiment, and a stand-in for the
run's two hooks (decide after planning; the message's trace in the render context) until
``ccm.runs`` calls them itself."""
from __future__ import annotations

import pytest

EXPERIMENT_DECISION = {
    "rules": [
        {"name": "vip", "when": 'tier == "vip"', "then": "inserts/premium_upgrade.html"},
        {"name": "lapsing", "when": 'lifecycle in ("decline", "exit")', "then": {
            "experiment": "winback-test", "holdout": 0.2,
            "variants": [{"name": "offer", "content": "inserts/winback_offer.html", "weight": 3},
                         {"name": "paperless", "content": "inserts/go_paperless.html", "weight": 1}],
        }},
    ],
    "default": None,
}


@pytest.fixture
def decision_data() -> dict:
    return EXPERIMENT_DECISION
