"""Effective dates, the library sync and the reprint guarantee: a run uses the versions in
effect when it is planned and every message records the template and block versions."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from ccm.authoring import workflow
from ccm.imports import import_feed
from ccm.models import Message, Run, utcnow
from ccm.runs import service
from ccm.authoring.store import effective_versions, get_version, sync_library
from statement_engines import html_statement

BLOCK = "inserts/go_paperless.html"  # the print insert of the monthly statement
NEW_BLOCK = """<aside class="insert insert--paperless">
  <h2>{{ _("Paperless, version two") }}</h2>
</aside>
"""


def approve_new_block(engine, source: str, effective_from: dt.datetime | None = None) -> int:
    with engine.db.session() as session:
        saved = workflow.save_draft(session, engine.settings, BLOCK, source, "mara")
        workflow.submit(session, engine.settings, BLOCK, saved.version, "mara")
        workflow.approve(session, engine.settings, BLOCK, saved.version, "olga", effective_from=effective_from)
        return get_version(session, BLOCK, saved.version).id


def block_versions_of_print_messages(engine, run_id: int) -> set[int]:
    with engine.db.session() as session:
        messages = session.scalars(select(Message).where(Message.run_id == run_id, Message.channel == "print"))
        return {m.template_versions[BLOCK] for m in messages if BLOCK in m.template_versions}


def test_a_version_takes_effect_at_its_date(store):
    later = utcnow() + dt.timedelta(days=3)
    new_id = approve_new_block(store, NEW_BLOCK, effective_from=later)
    with store.db.session() as session:
        first_id = get_version(session, BLOCK, 1).id
        assert effective_versions(session)[BLOCK] == first_id
        assert effective_versions(session, at=later + dt.timedelta(seconds=1))[BLOCK] == new_id
        assert effective_versions(session, at=later - dt.timedelta(seconds=1))[BLOCK] == first_id


def test_retroactive_effect_is_refused(store):
    with pytest.raises(workflow.WorkflowError, match="in the past"):
        approve_new_block(store, NEW_BLOCK, effective_from=utcnow() - dt.timedelta(days=1))


def test_a_run_uses_what_was_in_effect_when_it_was_planned(loaded, feed_file, tmp_path):
    html_statement(loaded)  # BLOCK is an HTML insert: the statement that shows it
    before = service.run_cycle(loaded, "statement", "2026-11", progress=False)
    with loaded.db.session() as session:
        v1 = get_version(session, BLOCK, 1).id
    assert block_versions_of_print_messages(loaded, before.plan.run_id) == {v1}

    v2 = approve_new_block(loaded, NEW_BLOCK)  # in effect at once
    approve_new_block(loaded, NEW_BLOCK.replace("two", "three"), effective_from=utcnow() + dt.timedelta(days=30))
    december = tmp_path / "feed-12.jsonl"
    december.write_text(feed_file.read_text(encoding="utf-8").replace("2026-11", "2026-12"), encoding="utf-8")
    import_feed(loaded.db, december, rejects_dir=tmp_path / "rejects", progress=False)
    after = service.run_cycle(loaded, "statement", "2026-12", progress=False)

    assert block_versions_of_print_messages(loaded, after.plan.run_id) == {v2}  # not v1, not the future v3
    assert block_versions_of_print_messages(loaded, before.plan.run_id) == {v1}  # the earlier run is unchanged
    with loaded.db.session() as session:
        run = session.get(Run, after.plan.run_id)
        assert run.template_versions[BLOCK] == v2
        message = session.scalars(select(Message).where(Message.run_id == run.id, Message.channel == "print")).first()
        assert {"statement/statement.html", BLOCK} <= set(message.template_versions)  # document and block versions


def test_sync_imports_changed_files_as_drafts_and_never_touches_approved_versions(make_settings, tmp_path):
    from app import create_app

    library = tmp_path / "library"
    shutil.copytree(Path(__file__).resolve().parents[3] / "templates", library)
    app = create_app(make_settings(tmp_path, ccm={"templates_dir": str(library)}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    runner = app.test_cli_runner()
    seeded = runner.invoke(args=["templates", "sync", "--json"])
    assert seeded.exit_code == 0 and '"state": "approved"' in seeded.output

    path = library / BLOCK
    original = path.read_text(encoding="utf-8")
    path.write_text(NEW_BLOCK, encoding="utf-8")
    assert runner.invoke(args=["templates", "sync"]).output.strip() == f"{BLOCK} v2 (draft)"
    assert runner.invoke(args=["templates", "sync"]).output.strip() == "library unchanged"
    with engine.db.session() as session:
        v1, v2 = get_version(session, BLOCK, 1), get_version(session, BLOCK, 2)
        assert (v1.state, v1.source) == ("approved", original)
        assert (v2.state, v2.author) == ("draft", "library")
        assert effective_versions(session)[BLOCK] == v1.id
        workflow.save_draft(session, engine.settings, BLOCK, NEW_BLOCK.replace("two", "2"), "mara")
    assert runner.invoke(args=["templates", "sync"]).output.strip() == "library unchanged"
    with engine.db.session() as session:
        assert len(sync_library(session, library)) == 0
    engine.close()
