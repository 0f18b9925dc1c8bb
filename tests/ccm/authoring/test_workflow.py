"""The authoring workflow through the CLI: draft, review, approval, retirement, history and
diff, with the refusals the engine enforces (maker-checker, immutability, states)."""
from __future__ import annotations

import json

import pytest
from signed_in import as_user
from sqlalchemy import select, text

from ccm.authoring import workflow
from ccm.models import Template, TemplateVersion
from ccm.authoring.store import ImmutableVersionError, get_version

from .conftest import GOOD_INSERT

INSERT = "inserts/winback_offer.html"


def test_draft_review_approve_retire_with_history_and_diff(ccm, write):
    saved = ccm("templates", "edit", INSERT, "--file", str(write(GOOD_INSERT)))
    assert saved.exit_code == 0, saved.output
    assert f"{INSERT} v2 saved as draft" in saved.output
    assert ccm("templates", "submit", INSERT, "2").exit_code == 0
    approved = ccm("templates", "approve", INSERT, "2", user="olga")
    assert approved.exit_code == 0, approved.output
    assert "approved by olga" in approved.output

    listing = {row["name"]: row for row in json.loads(ccm("templates", "list", "--json").output)}
    assert listing[INSERT] | {"title": ""} == {"name": INSERT, "kind": "insert", "title": "", "versions": 2, "latest": 2,
                                               "latest_state": "approved", "in_effect": 2}
    shown = json.loads(ccm("templates", "show", INSERT, "--version", "2", "--json").output)
    assert shown["author"] == "mara" and shown["approved_by"] == "olga" and shown["source"] == GOOD_INSERT
    assert ccm("templates", "show", INSERT, "--source").output == GOOD_INSERT

    diff = ccm("templates", "diff", INSERT, "1", "2")
    assert diff.exit_code == 0
    assert f"--- {INSERT} v1 (approved)" in diff.output and f"+++ {INSERT} v2 (approved)" in diff.output
    assert '+  <h2>{{ _("We miss you, %(name)s", name=customer.name) }}</h2>' in diff.output
    assert '-  <h2>{{ _("We miss you") }}</h2>' in diff.output

    assert ccm("templates", "retire", INSERT, "1").exit_code == 0
    history = json.loads(ccm("templates", "history", INSERT, "--json").output)
    assert [(e["actor"], e["action"], e["version"]) for e in history] == [
        ("library", "seed", 1), ("mara", "create_draft", 2), ("mara", "submit", 2), ("olga", "approve", 2),
        ("mara", "retire", 1),
    ]
    assert all("@" not in json.dumps(e["details"]) for e in history)  # no personal data
    assert "olga" in ccm("templates", "history", INSERT).output


def test_self_approval_is_refused_by_the_engine(ccm, write, store):
    ccm("templates", "edit", INSERT, "--file", str(write(GOOD_INSERT)))
    ccm("templates", "submit", INSERT, "2")
    refused = ccm("templates", "approve", INSERT, "2", user="mara")
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        f"Error: {INSERT} v2: mara is its author and cannot approve it (maker-checker); another person must approve"]
    with store.db.session() as session, pytest.raises(workflow.WorkflowError, match="maker-checker"):
        workflow.approve(session, store.settings, INSERT, 2, "mara")


def test_the_submitter_of_a_library_draft_cannot_approve_it_either(ccm, store):
    with store.db.session() as session:
        template = session.scalar(select(Template).where(Template.name == INSERT))
        session.add(TemplateVersion(template=template, version=2, source=GOOD_INSERT, source_hash="x", state="draft",
                                    meta={}, author="library"))
    assert ccm("templates", "submit", INSERT, "2", user="mara").exit_code == 0
    refused = ccm("templates", "approve", INSERT, "2", user="mara")
    assert refused.exit_code == 1 and "mara is an editor or submitter" in refused.output
    assert ccm("templates", "approve", INSERT, "2", user="olga").exit_code == 0


def test_whoever_edited_someone_elses_draft_cannot_approve_it(ccm, write):
    ccm("templates", "edit", INSERT, "--file", str(write(GOOD_INSERT)), user="bob")
    changed = GOOD_INSERT.replace("</", " </", 1)
    assert ccm("templates", "edit", INSERT, "--file", str(write(changed)), "--version", "2", user="mallory").exit_code == 0
    assert ccm("templates", "submit", INSERT, "2", user="bob").exit_code == 0
    refused = ccm("templates", "approve", INSERT, "2", user="mallory")
    assert refused.exit_code == 1 and "mallory is an editor or submitter" in refused.output
    assert ccm("templates", "approve", INSERT, "2", user="olga").exit_code == 0


def test_editing_an_approved_version_is_refused_everywhere(ccm, write, store):
    refused = ccm("templates", "edit", INSERT, "--version", "1", "--file", str(write(GOOD_INSERT)))
    assert refused.exit_code == 1
    assert f"{INSERT} v1 is approved and cannot be edited" in refused.output
    # The engine refuses it on flush, whatever code path changes the source ...
    with pytest.raises(ImmutableVersionError, match="approved and immutable"):
        with store.db.session() as session:
            get_version(session, INSERT, 1).source = "changed"
    with pytest.raises(ImmutableVersionError, match="cannot become draft"):
        with store.db.session() as session:
            get_version(session, INSERT, 1).state = "draft"
    # ... and the database refuses it even to raw SQL.
    with pytest.raises(Exception, match="immutable"):
        with store.db.engine.begin() as connection:
            connection.execute(text("UPDATE template_versions SET source = 'x' WHERE state = 'approved'"))
    with pytest.raises(Exception, match="cannot be deleted"):
        with store.db.engine.begin() as connection:
            connection.execute(text("DELETE FROM template_versions WHERE state = 'approved'"))
    with store.db.session() as session:
        assert "We miss you" in get_version(session, INSERT, 1).source


def test_a_draft_can_be_edited_in_place_rejected_and_resubmitted(ccm, write):
    ccm("templates", "edit", INSERT, "--file", str(write(GOOD_INSERT)))
    again = ccm("templates", "edit", INSERT, "--version", "2", "--file", str(write(GOOD_INSERT.replace("miss", "really miss"))))
    assert again.exit_code == 0 and "v2 saved as draft" in again.output
    assert ccm("templates", "submit", INSERT, "2").exit_code == 0
    busy = ccm("templates", "edit", INSERT, "--version", "2", "--file", str(write(GOOD_INSERT)))
    assert busy.exit_code == 1 and "v2 is in_review and cannot be edited" in busy.output
    assert ccm("templates", "reject", INSERT, "2", "--reason", "tone it down", user="olga").exit_code == 0
    assert ccm("templates", "approve", INSERT, "2", user="olga").output.strip() == (
        f"Error: {INSERT} v2 is draft; only a version that is in review can be approved")
    assert ccm("templates", "submit", INSERT, "2").exit_code == 0
    history = json.loads(ccm("templates", "history", INSERT, "--json").output)
    assert {"actor": "olga", "action": "reject"} .items() <= history[-2].items()
    assert history[-2]["details"] == {"reason": "tone it down"}


def test_an_unchanged_source_is_not_a_new_draft_and_new_templates_need_a_kind(ccm, write, store):
    with store.db.session() as session:
        current = get_version(session, INSERT, 1).source
    same = ccm("templates", "edit", INSERT, "--file", str(write(current)))
    assert same.exit_code == 1 and "no change" in same.output
    new = ccm("templates", "edit", "legal/terms.html", "--file", str(write("<p>{{ company.name }} terms</p>\n")))
    assert new.exit_code == 1 and "give its kind (--kind)" in new.output
    made = ccm("templates", "edit", "legal/terms.html", "--kind", "legal", "--title", "Terms", "--file",
               str(write("<p>{{ company.name }} terms</p>\n")))
    assert made.exit_code == 0 and "legal/terms.html v1 saved as draft" in made.output


def test_a_document_can_include_a_block_by_name_and_unknown_blocks_are_refused(ccm, write):
    block = ccm("templates", "edit", "legal/terms.html", "--kind", "legal", "--file", str(write("<p>{{ company.name }} terms</p>\n")))
    assert block.exit_code == 0
    letter = '<html><body>\n<p>{{ customer.name }}</p>\n{% include "legal/terms.html" %}\n{% include "legal/privacy.html" %}\n</body></html>\n'
    refused = ccm("templates", "edit", "letters/welcome.html", "--kind", "letter", "--file", str(write(letter)))
    assert refused.exit_code == 1
    assert "letters/welcome.html, line 4, column 13: error: unknown block or template 'legal/privacy.html'" in refused.output

    letter = letter.replace('{% include "legal/privacy.html" %}\n', "")
    assert ccm("templates", "edit", "letters/welcome.html", "--kind", "letter", "--file", str(write(letter))).exit_code == 0
    assert ccm("templates", "submit", "letters/welcome.html", "1").exit_code == 0
    early = ccm("templates", "approve", "letters/welcome.html", "1", user="olga")
    assert early.output.strip() == ("Error: letters/welcome.html v1 uses legal/terms.html, which has no approved version yet; "
                                    "approve that first")
    assert ccm("templates", "submit", "legal/terms.html", "1").exit_code == 0
    assert ccm("templates", "approve", "legal/terms.html", "1", user="olga").exit_code == 0
    assert ccm("templates", "approve", "letters/welcome.html", "1", user="olga").exit_code == 0


def test_no_one_acts_as_the_library_or_by_a_typed_name_and_unknown_objects_are_one_line_errors(ccm, write, store):
    from ccm.staff import UserError, create_user

    with pytest.raises(UserError, match="a name the engine acts under"):
        create_user(store, "library", "a long test password", ["marketer"], actor="test")
    anonymous = ccm("templates", "edit", INSERT, "--file", str(write(GOOD_INSERT)), user=None)
    assert anonymous.exit_code == 1 and anonymous.output.strip() == "Error: sign in first: ccm login (or set CCM_TOKEN to a personal token)"
    typed = ccm("templates", "submit", INSERT, "2", "--user", "olga")
    assert typed.exit_code == 2 and "No such option '--user'" in typed.output
    for args in (("templates", "show", "nope.html"), ("templates", "diff", INSERT, "1", "9"),
                 ("templates", "history", "nope.html"), ("templates", "submit", INSERT, "7")):
        result = ccm(*args)
        assert result.exit_code == 1, args
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("Error: "), result.output


def test_approving_needs_the_permission_and_the_password_again(ccm, write, store):
    assert ccm("templates", "edit", INSERT, "--file", str(write(GOOD_INSERT)), user="mara").exit_code == 0
    assert ccm("templates", "submit", INSERT, "2", user="mara").exit_code == 0
    refused = ccm("templates", "approve", INSERT, "2", user="bob")  # a marketer only
    assert refused.exit_code == 1 and "bob may not do this: it needs the permission templates:approve" in refused.output
    wrong = ccm("templates", "approve", INSERT, "2", user="olga", password="not her password")
    assert wrong.exit_code == 1 and "that password is not right; nothing was done" in wrong.output
    assert ccm("templates", "approve", INSERT, "2", "--comment", "legal checked it", user="olga").exit_code == 0
    history = json.loads(ccm("templates", "history", INSERT, "--json").output)
    assert history[-1]["action"] == "approve" and history[-1]["details"]["comment"] == "legal checked it"


def test_every_templates_command_has_help(runner):
    commands = ["sync", "list", "show", "edit", "submit", "approve", "reject", "retire", "validate", "diff", "history",
                "preview", "test-send"]
    for command in commands:
        result = runner.invoke(args=["templates", command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, command


@pytest.mark.postgres
def test_postgresql_refuses_changes_to_approved_versions_too(make_settings, tmp_path, postgres_url, write):
    from app import create_app

    app = create_app(make_settings(tmp_path, ccm={"database_url": postgres_url}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["templates", "sync"]).exit_code == 0
    assert runner.invoke(args=["templates", "edit", INSERT, "--file", str(write(GOOD_INSERT))], env=as_user(engine, "mara")).exit_code == 0
    assert runner.invoke(args=["templates", "submit", INSERT, "2"], env=as_user(engine, "mara")).exit_code == 0
    assert runner.invoke(args=["templates", "approve", INSERT, "2"], env=as_user(engine, "olga")).exit_code == 0
    assert runner.invoke(args=["templates", "retire", INSERT, "1"], env=as_user(engine, "olga")).exit_code == 0
    assert runner.invoke(args=["templates", "edit", INSERT, "--file", str(write(GOOD_INSERT + " "))], env=as_user(engine, "mara")).exit_code == 0
    for statement, refusal in (("UPDATE template_versions SET source = 'x' WHERE version = 2", "immutable"),
                               ("UPDATE template_versions SET state = 'approved' WHERE state = 'retired'", "can only be retired"),
                               ("DELETE FROM template_versions WHERE state = 'approved'", "cannot be deleted"),
                               *RAW_SQL_FORGERIES):
        with pytest.raises(Exception, match=refusal):
            with engine.db.engine.begin() as connection:
                connection.execute(text(statement))
    engine.close()


# Raw SQL that would put unapproved or self-approved content live, or swap approved content's names.
RAW_SQL_FORGERIES = (
    ("INSERT INTO template_versions (template_id, version, source, source_hash, state, meta, author, approved_by, created_at) "
     "SELECT id, 99, 'forged', 'x', 'approved', '{}', 'mallory', 'mallory', CURRENT_TIMESTAMP FROM templates "
     f"WHERE name = '{INSERT}'", "starts as a draft"),
    ("UPDATE template_versions SET state = 'approved', approved_by = author WHERE state = 'draft'",
     "must not be its author"),
    (f"UPDATE templates SET name = 'inserts/swapped.html' WHERE name = '{INSERT}'", "keeps its name and kind"),
)


def test_sqlite_refuses_forged_approvals_and_renames_by_raw_sql(ccm, write, store):
    ccm("templates", "edit", INSERT, "--file", str(write(GOOD_INSERT)), user="mara")  # a draft v2 to forge with
    for statement, refusal in RAW_SQL_FORGERIES:
        with pytest.raises(Exception, match=refusal):
            with store.db.engine.begin() as connection:
                connection.execute(text(statement))
