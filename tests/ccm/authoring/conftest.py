"""Fixtures of the authoring tests: a store seeded from the shipped library, a CLI helper
that acts as a named user, and files to save as drafts."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from ccm.authoring.store import sync_library

DATA = Path(__file__).resolve().parents[2] / "data"

GOOD_INSERT = """<aside class="insert insert--winback">
  <h2>{{ _("We miss you, %(name)s", name=customer.name) }}</h2>
  <p>{{ _("Your balance is %(amount)s.", amount=statement.amount_due | money(statement.currency)) }}</p>
</aside>
"""


@pytest.fixture
def store(engine):
    """The engine with the shipped library seeded (version 1 of everything, approved)."""
    with engine.db.session() as session:
        sync_library(session, engine.templates_dir)
    return engine


@pytest.fixture
def ccm(runner, store) -> Callable[..., Result]:
    """``ccm("templates", "submit", NAME, "2", user="mara")``: run a command as a user."""

    def invoke(*args: str, user: str | None = "mara") -> Result:
        extra = ["--user", user] if user and args[:1] == ("templates",) and args[1] in ACTING else []
        return runner.invoke(args=[*args, *extra])

    return invoke


ACTING = {"edit", "submit", "approve", "reject", "retire", "preview", "test-send"}


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def make(text: str, name: str = "draft.html") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return make


def ssti_corpus() -> list[str]:
    lines = (DATA / "ssti_corpus.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]
