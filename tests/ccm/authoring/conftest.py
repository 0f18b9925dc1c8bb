"""Fixtures of the authoring tests: a store seeded from the shipped library, a CLI helper
that acts as a signed-in user (a personal token, the password for approvals), and files to
save as drafts."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from ccm.authoring.store import sync_library
from signed_in import as_user

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
def tokens(store) -> dict[str, dict[str, str]]:
    """The environment of a CLI signed in as each of the test's authors (``signed_in.ROLES``:
    authors who may also approve, so that the engine's maker-checker rule, not a missing
    permission, refuses them their own work)."""
    return {name: as_user(store, name) for name in ("mara", "olga", "mallory", "bob")}


@pytest.fixture
def ccm(runner, store, tokens) -> Callable[..., Result]:
    """``ccm("templates", "submit", NAME, "2", user="mara")``: run a command signed in as a
    user (``user=None``: signed in as no one; ``password``: what they answer when asked again)."""

    def invoke(*args: str, user: str | None = "mara", password: str | None = None) -> Result:
        env = dict(tokens[user]) if user else {"CCM_TOKEN": ""}
        if password is not None:
            env["CCM_PASSWORD"] = password
        return runner.invoke(args=list(args), env=env)

    return invoke


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
