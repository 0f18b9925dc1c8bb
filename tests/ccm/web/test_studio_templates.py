"""The studio's templates: the library with where blocks are used, the editor (the engine's
checks at line and column, as a save and as the author types), the live preview of an
unsaved source (the e-mail's HTML served apart under a strict CSP; a Chinese customer's
statement in Chinese), and the maker-checker workflow with fresh sign-in, each refusal tested."""
from __future__ import annotations

import re
import subprocess

import pytest
from sqlalchemy import select

from ccm.authoring import list_templates
from ccm.authoring.store import sync_library
from ccm.models import Customer, TemplateVersion
from ccm.staff import BUILT_IN_ROLES
from ccm.models.authoring import AuditLog

from .conftest import PASSWORD

INSERT = "inserts/go_paperless.html"
EDIT = f"/console/templates/{INSERT}/edit"
BROKEN = '<aside class="insert">\n  <h2>{{ _("Go paperless") }</h2>\n</aside>\n'  # a "}}" missing on line 2
GOOD = ('<aside class="insert insert--paperless">\n  <h2>{{ _("Go paperless") }}</h2>\n'
        '  <p>Paper-free from today, {{ customer.name }}.</p>\n</aside>\n')


@pytest.fixture
def store(loaded):
    with loaded.db.session() as session:
        sync_library(session, loaded.templates_dir)
    return loaded


def _pdf_text(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True).stdout.decode("utf-8")


def _versions(engine, name: str = INSERT) -> list[tuple[int, str, str, str | None]]:
    with engine.db.reader() as session:
        rows = session.scalars(select(TemplateVersion).join(TemplateVersion.template)
                               .where(TemplateVersion.template.has(name=name)).order_by(TemplateVersion.version))
        return [(v.version, v.state, v.author, v.approved_by) for v in rows]


def test_the_library_lists_blocks_with_where_they_are_used(console_as, store):
    client, _ = console_as("viewer")
    page = client.get("/console/templates").get_data(as_text=True)
    assert INSERT in page and "statement/statement.html" in page
    row = re.search(r"<tr>\s*<td[^>]*><a href=\"/console/templates/inserts/premium_upgrade.html\".*?</tr>", page, re.S).group(0)
    assert "picked by the decision of monthly-statement / statement.insert" in row
    page = client.get(f"/console/templates/{INSERT}").get_data(as_text=True)
    assert "v1" in page and "approved" in page and "Where used" in page


def test_a_draft_with_an_error_shows_it_at_its_line_and_column_then_a_good_one_saves(console_as, store):
    client, csrf = console_as("marketer")
    assert client.get(EDIT).status_code == 200
    refused = client.post(EDIT, data={"csrf_token": csrf, "source": BROKEN, "based_on": "1"})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert re.search(r'data-line="2" data-column="\d+">line 2, column \d+</a>', page)
    assert _versions(store) == [(1, "approved", "library", "library")] or len(_versions(store)) == 1  # nothing saved

    checked = client.post(f"/console/templates/{INSERT}/check", data={"source": BROKEN}, headers={"X-CSRFToken": csrf})
    problems = checked.get_json()
    assert problems and problems[0]["line"] == 2 and problems[0]["severity"] == "error" and problems[0]["column"] >= 1
    assert client.post(f"/console/templates/{INSERT}/check", data={"source": GOOD}, headers={"X-CSRFToken": csrf}).get_json() == []

    saved = client.post(EDIT, data={"csrf_token": csrf, "source": GOOD, "based_on": "1"}, follow_redirects=True)
    assert "Version 2 saved as a draft." in saved.get_data(as_text=True)
    assert _versions(store)[-1][:3] == (2, "draft", "marketer")
    again = client.post(EDIT, data={"csrf_token": csrf, "source": GOOD.replace("today", "now"), "based_on": "2", "draft": "2"},
                        follow_redirects=True)
    assert "Version 2 saved as a draft." in again.get_data(as_text=True) and len(_versions(store)) == 2  # the draft changed
    with store.db.reader() as session:
        actions = [e.action for e in session.scalars(select(AuditLog).where(AuditLog.object_name == INSERT)
                                                      .where(AuditLog.actor == "marketer"))]
    assert actions == ["create_draft", "edit"]


def test_the_preview_renders_the_unsaved_source_with_the_email_under_a_strict_csp(console_as, store):
    client, csrf = console_as("marketer")
    fragment = client.post(f"/console/templates/{INSERT}/preview", data={"source": GOOD, "variants": "1"},
                           headers={"X-CSRFToken": csrf, "X-Fragment": "1"})
    assert fragment.status_code == 200
    page = fragment.get_data(as_text=True)
    assert "Paper-free from today, Alex Sample." in page  # the text of the PDF pages: the unsaved draft, in the statement
    assert "Every variant of slot statement.insert" in page and "inserts/premium_upgrade.html" in page
    image = re.search(r'src="(/console/template-previews/[^"]+/page-1\.png)"', page).group(1)
    assert client.get(image).data.startswith(b"\x89PNG")
    assert _versions(store) == [(1, "approved", "library", "library")] or len(_versions(store)) == 1  # nothing saved

    email = "email/statement_ready.html"
    source = client.get(f"/console/templates/{email}/edit").get_data(as_text=True)
    original = re.search(r'<textarea id="source"[^>]*>(.*?)</textarea>', source, re.S).group(1)
    import html as html_module

    changed = html_module.unescape(original).replace("Dear", "Hello dear", 1)
    page = client.post(f"/console/templates/{email}/preview", data={"source": changed, "customer": "C-EMAIL"},
                       headers={"X-CSRFToken": csrf, "X-Fragment": "1"}).get_data(as_text=True)
    assert 'sandbox=""' in page and "statement for 2026-11 is ready" in page
    part = re.search(r'<iframe sandbox="" src="([^"]+email\.html)"', page).group(1)
    body = client.get(part)
    assert body.headers["Content-Type"].startswith("text/html")
    csp = body.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert "Hello dear" in body.get_data(as_text=True)

    sms = client.post("/console/templates/sms/payment_due.txt/preview", data={"customer": "C-ZH"},
                      headers={"X-CSRFToken": csrf, "X-Fragment": "1"}).get_data(as_text=True)
    assert "Encoding UCS-2, 1 segment(s)" in sms

    refused = client.post(f"/console/templates/{INSERT}/preview", data={"source": BROKEN}, headers={"X-CSRFToken": csrf, "X-Fragment": "1"})
    assert refused.status_code == 422 and "fails validation" in refused.get_data(as_text=True)


def test_the_statement_preview_of_a_chinese_customer_shows_chinese(console_as, store):
    client, csrf = console_as("marketer")
    page = client.post("/console/templates/statement/statement.html/preview", data={"customer": "C-ZH", "cycle": "2026-11"},
                       headers={"X-CSRFToken": csrf, "X-Fragment": "1"}).get_data(as_text=True)
    assert "王小明" in page  # the text of the pages
    pdf = re.search(r'href="(/console/template-previews/[^"]+/document\.pdf)"', page).group(1)
    assert "王小明" in _pdf_text(client.get(pdf).data)


def test_submit_then_an_approver_approves_with_a_fresh_sign_in_and_the_author_is_refused(console_as, store, app):
    marketer, csrf = console_as("marketer")
    marketer.post(EDIT, data={"csrf_token": csrf, "source": GOOD, "based_on": "1"})
    submitted = marketer.post(f"/console/templates/{INSERT}/submit", data={"csrf_token": csrf, "version": "2"}, follow_redirects=True)
    assert "Version 2 is in review" in submitted.get_data(as_text=True)
    assert marketer.post(f"/console/templates/{INSERT}/approve", data={"csrf_token": csrf, "version": "2"}).status_code == 403

    approver, csrf_a = console_as("approver")
    with approver.session_transaction() as session:
        session["fresh_at"] = 0  # signed in long ago: asked for the password again
    stale = approver.post(f"/console/templates/{INSERT}/approve", data={"csrf_token": csrf_a, "version": "2"})
    assert stale.status_code == 302 and "/console/confirm" in stale.headers["Location"]
    assert _versions(store)[-1][1] == "in_review"
    confirmed = approver.post(stale.headers["Location"], data={"csrf_token": csrf_a, "password": PASSWORD})
    assert confirmed.status_code == 302
    approved = approver.post(f"/console/templates/{INSERT}/approve", data={"csrf_token": csrf_a, "version": "2",
                                                                           "comment": "Legal checked the wording"},
                             follow_redirects=True)
    assert "Version 2 approved." in approved.get_data(as_text=True)
    assert "Legal checked the wording" in approved.get_data(as_text=True)  # the approval's comment, in the history
    assert _versions(store)[-1] == (2, "approved", "marketer", "approver")

    # The author, were they an approver too, is refused by the engine (maker-checker), with its reason shown.
    refused = _author_approves(console_as, store)
    assert "marketer-approver is its author and cannot approve it (maker-checker)" in refused
    assert _versions(store)[-1][1] == "in_review"
    with store.db.reader() as session:
        actions = [(e.actor, e.action, e.version) for e in session.scalars(
            select(AuditLog).where(AuditLog.object_name == INSERT).order_by(AuditLog.id))]
    assert ("marketer", "submit", 2) in actions and ("approver", "approve", 2) in actions


def test_a_reviewer_rejects_with_a_comment(console_as, store):
    marketer, csrf = console_as("marketer")
    marketer.post(EDIT, data={"csrf_token": csrf, "source": GOOD, "based_on": "1"})
    marketer.post(f"/console/templates/{INSERT}/submit", data={"csrf_token": csrf, "version": "2"})
    approver, csrf_a = console_as("approver")
    empty = approver.post(f"/console/templates/{INSERT}/reject", data={"csrf_token": csrf_a, "version": "2", "comment": " "},
                          follow_redirects=True)
    assert "a rejection needs a comment" in empty.get_data(as_text=True) and _versions(store)[-1][1] == "in_review"
    done = approver.post(f"/console/templates/{INSERT}/reject", data={"csrf_token": csrf_a, "version": "2", "comment": "Shorter"},
                         follow_redirects=True)
    page = done.get_data(as_text=True)
    assert "Version 2 sent back to draft." in page and "reason: <bdi>Shorter</bdi>" in page
    assert _versions(store)[-1][1] == "draft"


def _author_approves(console_as, store) -> str:
    """A marketer who is also an approver writes version 3, submits it and tries to approve it."""
    from ccm.staff import create_user

    create_user(store, "marketer-approver", PASSWORD, ["marketer", "approver"], actor="test")
    client, csrf = console_as("marketer-approver")
    client.post(EDIT, data={"csrf_token": csrf, "source": GOOD.replace("today", "soon"), "based_on": "2"})
    client.post(f"/console/templates/{INSERT}/submit", data={"csrf_token": csrf, "version": "3"})
    answer = client.post(f"/console/templates/{INSERT}/approve", data={"csrf_token": csrf, "version": "3"}, follow_redirects=True)
    return answer.get_data(as_text=True)


def test_viewer_may_not_edit_and_marketer_may_not_approve(console_as, store):
    viewer, csrf = console_as("viewer")
    assert viewer.get(EDIT).status_code == 403
    assert viewer.post(EDIT, data={"csrf_token": csrf, "source": GOOD}).status_code == 403
    assert viewer.post(f"/console/templates/{INSERT}/check", data={"source": GOOD}, headers={"X-CSRFToken": csrf}).status_code == 403
    marketer, csrf = console_as("marketer")
    assert marketer.post(f"/console/templates/{INSERT}/reject", data={"csrf_token": csrf, "version": "1", "comment": "x"}).status_code == 403
    assert marketer.post(f"/console/templates/{INSERT}/retire", data={"csrf_token": csrf, "version": "1"}).status_code == 403


def test_effective_date_diff_history_retire_and_a_proof_to_the_seed_list(console_as, store):
    marketer, csrf = console_as("marketer")
    marketer.post(EDIT, data={"csrf_token": csrf, "source": GOOD, "based_on": "1"})
    marketer.post(f"/console/templates/{INSERT}/submit", data={"csrf_token": csrf, "version": "2"})
    sent = marketer.post(f"/console/templates/{INSERT}/proof", data={"csrf_token": csrf, "version": "2", "seed": "marketing"},
                         follow_redirects=True).get_data(as_text=True)
    assert "Proof of version 2 sent to 1 address(es) of seed list marketing." in sent
    proofs = [p.read_text(encoding="utf-8", errors="replace") for p in (store.var_dir / "maildir").rglob("*") if p.is_file()]
    assert len(proofs) == 1 and "X-CCM-Proof: yes" in proofs[0]

    approver, csrf_a = console_as("approver")
    approver.post(f"/console/templates/{INSERT}/approve",
                  data={"csrf_token": csrf_a, "version": "2", "effective_from": "2099-01-02T09:30"})
    assert _versions(store)[-1] == (2, "approved", "marketer", "approver")
    page = approver.get(f"/console/templates/{INSERT}?from=1&to=2").get_data(as_text=True)
    assert "2099-01-02 09:30" in page  # the approver's zone is UTC
    assert '<span class="add">+  &lt;p&gt;Paper-free from today' in page  # the diff
    for action in ("create draft", "submit", "test send", "approve"):
        assert f"<td>{action}</td>" in page
    retired = approver.post(f"/console/templates/{INSERT}/retire", data={"csrf_token": csrf_a, "version": "1"},
                            follow_redirects=True).get_data(as_text=True)
    assert "Version 1 retired." in retired and _versions(store)[0][1] == "retired"


def test_the_preview_finds_customers_by_external_id_or_name(console_as, store):
    client, _ = console_as("marketer")  # may see customers: found by name too, and shown with it
    found = client.get("/console/template-previews/customers?q=c-z").get_data(as_text=True)
    assert '<option value="C-ZH">C-ZH · \u2068' in found and "C-EMAIL" not in found
    with store.db.reader() as session:
        name = session.scalar(select(Customer.name).where(Customer.external_id == "C-ZH"))
    by_name = client.get(f"/console/template-previews/customers?q={name[:2]}").get_data(as_text=True)
    assert '<option value="C-ZH">' in by_name and name in by_name
    assert client.get("/console/template-previews/customers?q=").get_data(as_text=True).strip() == ""
    approver, _ = console_as("approver")  # may not see customers: external ids and languages only
    assert "customers:view" not in BUILT_IN_ROLES["approver"][1]
    shown = approver.get("/console/template-previews/customers?q=c-z").get_data(as_text=True)
    assert '<option value="C-ZH">C-ZH · zh_' in shown and name not in shown


def test_a_new_block_is_made_in_the_browser_with_its_first_draft_checked(console_as, store):
    marketer, csrf = console_as("marketer")
    form = {"csrf_token": csrf, "name": "inserts/spring_offer.html", "kind": "insert", "title": "Spring offer"}
    bad = marketer.post("/console/templates-new", data={**form, "source": "<p>{{ customer.nope }</p>"})
    assert bad.status_code == 422 and "line 1, column" in bad.get_data(as_text=True)
    made = marketer.post("/console/templates-new", data={**form, "source": "<aside><p>{{ customer.name }}</p></aside>"})
    assert made.status_code == 302 and "/console/templates/inserts/spring_offer.html/edit" in made.headers["Location"]
    listed = marketer.get("/console/templates").get_data(as_text=True)
    assert "inserts/spring_offer.html" in listed
    again = marketer.post("/console/templates-new", data={**form, "source": "<p>x</p>"}, follow_redirects=True)
    assert "A template with this name exists" in again.get_data(as_text=True)
    viewer, csrf_v = console_as("viewer")
    assert viewer.post("/console/templates-new", data={**form, "csrf_token": csrf_v}).status_code == 403


def test_a_first_draft_is_checked_and_previewed_as_it_is_typed(console_as, store):
    marketer, csrf = console_as("marketer")
    form = {"csrf_token": csrf, "name": "inserts/autumn.typ", "kind": "insert", "source": "<p>{{ customer.nope }</p>"}
    headers = {"X-CSRFToken": csrf}
    nameless = marketer.post("/console/templates-new/check", data={**form, "kind": ""}, headers=headers)
    assert nameless.status_code == 422 and "choose its kind" in nameless.get_data(as_text=True)
    checked = marketer.post("/console/templates-new/check", data={**form, "name": "inserts/autumn.html"}, headers=headers)
    assert checked.status_code == 200 and checked.headers["X-Editor-Language"] == "html"
    [problem] = checked.get_json()
    assert (problem["line"], problem["severity"]) == (1, "error")
    assert marketer.post("/console/templates-new/check", data=form, headers=headers).headers["X-Editor-Language"] == "typst"
    shown = marketer.post("/console/templates-new/preview", headers=headers,
                          data={**form, "name": "inserts/autumn.html", "source": "<aside><p>Autumn for {{ customer.name }}</p></aside>"})
    assert shown.status_code == 200 and 'class="studio-rendered"' in shown.get_data(as_text=True)
    with_customer = marketer.post("/console/templates-new/preview", headers=headers, data={
        **form, "name": "inserts/autumn.html", "source": "<aside><p>Autumn for {{ customer.name }}</p></aside>", "customer": "C-ZH"})
    assert with_customer.status_code == 200
    viewer, csrf_v = console_as("viewer")
    assert viewer.post("/console/templates-new/check", data={**form, "csrf_token": csrf_v}, headers={"X-CSRFToken": csrf_v}).status_code == 403
    with store.db.reader() as session:  # nothing stored
        assert "inserts/autumn.html" not in {row["name"] for row in list_templates(session)}


def test_a_typst_statement_is_checked_and_previewed_in_the_studio(console_as, store):
    client, csrf = console_as("marketer")
    headers = {"X-CSRFToken": csrf, "X-Fragment": "1"}
    name = "statement/statement.typ"
    page = client.get(f"/console/templates/{name}/edit").get_data(as_text=True)
    assert 'data-language="typst"' in page
    source = _source_of(store, name)
    broken = source.replace('= #tr("Monthly statement")', '= #tr("Monthly statement"')
    problems = client.post(f"/console/templates/{name}/check", data={"source": broken, "csrf_token": csrf}, headers=headers).get_json()
    assert problems and problems[0]["severity"] == "error" and problems[0]["line"] > 1
    shown = client.post(f"/console/templates/{name}/preview", data={"source": source, "customer": "C-ZH", "cycle": "2026-11"},
                        headers=headers).get_data(as_text=True)
    assert "王小明" in shown and "月度对账单" in shown  # the text of the pages, rendered by Typst


def _source_of(engine, name: str) -> str:
    with engine.db.reader() as session:
        return session.scalar(select(TemplateVersion.source).join(TemplateVersion.template)
                              .where(TemplateVersion.template.has(name=name)).order_by(TemplateVersion.version.desc()))
