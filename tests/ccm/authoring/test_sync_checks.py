"""Every way into the template store runs the save-time checks: the library sync (the CLI,
and the sync a run's planning does), and a version that fails them is never previewed or
sent as a proof, even one stored before the checks existed."""
from __future__ import annotations

import email
import email.policy
import shutil
from pathlib import Path

import pytest
from signed_in import as_user
from sqlalchemy import select

from app import create_app
from ccm.models import Template, TemplateVersion
from ccm.authoring.store import get_version, source_hash, sync_library

LIBRARY = Path(__file__).resolve().parents[3] / "templates"
EMAIL = "email/statement_ready.html"
REMOTE = '<p>Hello</p>\n<p><img src="https://tracker.evil.example/pixel.png"> <img src="file:///etc/passwd"></p>\n'


@pytest.fixture
def library(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    shutil.copytree(LIBRARY, folder)
    return folder


@pytest.fixture
def app_for(make_settings, tmp_path):
    apps = []

    def make(library: Path, **sections):
        app = create_app(make_settings(tmp_path, ccm={"templates_dir": str(library)}, **sections))
        app.extensions["ccm"].db.upgrade()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["ccm"].close()


def stored_versions(engine, name: str) -> list[tuple[int, str]]:
    with engine.db.session() as session:
        template = session.scalar(select(Template).where(Template.name == name))
        return [(v.version, v.state) for v in template.versions] if template else []


def inject_remote_content(library: Path) -> str:
    path = library / EMAIL
    source = path.read_text(encoding="utf-8")
    head, _, tail = source.rpartition("{% endblock %}")
    path.write_text(head + REMOTE + "{% endblock %}" + tail, encoding="utf-8")
    return path.read_text(encoding="utf-8")


def test_sync_refuses_a_changed_library_file_that_fails_the_checks(library, app_for):
    app = app_for(library)
    engine, runner = app.extensions["ccm"], app.test_cli_runner()
    assert runner.invoke(args=["templates", "sync"]).exit_code == 0
    inject_remote_content(library)
    (library / "inserts" / "go_paperless.html").write_text("<aside>{{ _('Go paperless today') }}</aside>\n", encoding="utf-8")

    result = runner.invoke(args=["templates", "sync"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0] == "inserts/go_paperless.html v2 (draft)"  # the good file goes in
    assert any(line.startswith(f"{EMAIL}, line ") and "error" in line and "tracker.evil.example" in line for line in lines)
    assert any("file:" in line for line in lines if line.startswith(EMAIL))
    assert lines[-1] == f"Error: 1 library file(s) refused, not imported: {EMAIL}"
    assert stored_versions(engine, EMAIL) == [(1, "approved")]  # no draft with the remote content


def test_the_seed_of_an_empty_store_is_checked_too(library, app_for):
    inject_remote_content(library)
    app = app_for(library)
    result = app.test_cli_runner().invoke(args=["templates", "sync", "--json"])
    assert result.exit_code == 1
    assert '"state": "approved"' in result.output  # the rest of the library is seeded
    assert stored_versions(app.extensions["ccm"], EMAIL) == []


def test_the_sync_a_run_planning_does_is_checked_as_well(library, app_for, caplog):
    """ccm.runs.plan syncs the library without passing settings: the session's engine's are used."""
    app = app_for(library)
    engine = app.extensions["ccm"]
    with engine.db.session() as session:
        sync_library(session, library)
    inject_remote_content(library)
    with engine.db.session() as session:
        assert sync_library(session, library) == []
    assert stored_versions(engine, EMAIL) == [(1, "approved")]
    assert f"{EMAIL}: not imported from the template library" in caplog.text


def test_a_stored_draft_that_fails_the_checks_is_neither_previewed_nor_sent(library, app_for, smtp_server, tmp_path):
    """A draft stored before sync ran the checks (as the old sync did) stays unusable."""
    server = smtp_server()
    app = app_for(library, channels={"email": server.url()}, proofs={"seed_lists": {"qa": ["proofs@corp.example"]}})
    engine, runner = app.extensions["ccm"], app.test_cli_runner()
    assert runner.invoke(args=["templates", "sync"]).exit_code == 0
    source = inject_remote_content(library)
    with engine.db.session() as session:
        template = get_version(session, EMAIL, 1).template
        session.add(TemplateVersion(template=template, version=2, source=source, source_hash=source_hash(source),
                                    state="draft", meta={}, author="library"))

    preview = runner.invoke(args=["templates", "preview", EMAIL, "--sample", "--out", str(tmp_path / "p")], env=as_user(engine, "mara"))
    assert preview.exit_code == 1
    assert preview.output.startswith(f"Error: {EMAIL} v2 fails validation and is not rendered: {EMAIL}, line ")
    assert not (tmp_path / "p").exists()

    proof = runner.invoke(args=["templates", "test-send", EMAIL, "--to", "qa"], env=as_user(engine, "mara"))
    assert proof.exit_code == 1 and "fails validation" in proof.output
    assert server.handler.messages == []

    approved = runner.invoke(args=["templates", "test-send", EMAIL, "--version", "1", "--to", "qa"], env=as_user(engine, "mara"))
    assert approved.exit_code == 0, approved.output
    sent = email.message_from_bytes(server.handler.messages[-1], policy=email.policy.default)
    assert "tracker.evil.example" not in sent.get_body(("html",)).get_content()
