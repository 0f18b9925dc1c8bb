"""The studio's decisions: rules in order, moved without saving, counted over the audience
before saving (a dry run of the decision as edited), saved as a new version, audited."""
from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from ccm.authoring.store import sync_library
from ccm.imports import import_customers
from ccm.models.authoring import AuditLog
from shared_population import people, write_people

SLOT = "/console/decisions/monthly-statement/statement.insert"


@pytest.fixture
def population(engine, tmp_path):
    import_customers(engine.db, write_people(tmp_path / "people.csv", people(20)), rejects_dir=tmp_path, progress=False)
    with engine.db.session() as session:
        sync_library(session, engine.templates_dir)  # the content blocks a decision can give
    return engine


def _form(page: str) -> dict[str, str]:
    """The fields of the decision form as the page filled them in (inputs and selected options)."""
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, flags=re.S):
        chosen = re.search(r'<option(?: value="([^"]*)")? selected>([^<]*)</option>', options)
        fields[name] = (chosen.group(1) if chosen.group(1) is not None else chosen.group(2)) if chosen else ""
    return {name: html.unescape(value) for name, value in fields.items() if not name.endswith("-remove")}


def test_a_marketer_reorders_counts_and_saves_a_decision(console_as, population, engine):
    client, csrf = console_as("marketer")
    overview = client.get("/console/decisions").get_data(as_text=True)
    assert SLOT in overview and "weekly-deals" in overview
    page = client.get(SLOT).get_data(as_text=True)
    assert [m for m in re.findall(r'name="rule-\d-name" value="([^"]*)"', page)] == ["vip", "winback", "paper", ""]

    form = {**_form(page), "csrf_token": csrf}
    moved = client.post(SLOT, data={**form, "move": "up:2"}).get_data(as_text=True)  # paper before winback, not saved
    assert re.findall(r'name="rule-\d-name" value="([^"]*)"', moved) == ["vip", "paper", "winback", ""]

    form = {**_form(moved), "csrf_token": csrf, "rule-3-name": "everyone", "rule-3-when": "true",
            "rule-3-then": "@experiment", "rule-3-exp": "insert-test", "rule-3-holdout": "10",
            "rule-3-var-0-name": "upgrade", "rule-3-var-0-content": "inserts/premium_upgrade.html", "rule-3-var-0-weight": "1"}
    counted = client.post(SLOT, data={**form, "action": "dry-run"}).get_data(as_text=True)
    assert "Dry run over 30 customers" in counted
    assert re.search(r"<td>paper</td><td class=\"num\">30</td>", counted)  # nobody is paperless: the paper rule takes all
    with engine.db.reader() as session:
        assert not session.scalars(select(AuditLog).where(AuditLog.action == "decision.save")).first()  # nothing saved yet

    saved = client.post(SLOT, data={**form, "action": "save"}, follow_redirects=True).get_data(as_text=True)
    assert "Version 2 saved." in saved
    assert re.findall(r'name="rule-\d-name" value="([^"]*)"', saved) == ["vip", "paper", "winback", "everyone", ""]
    assert 'value="insert-test"' in saved and 'value="10"' in saved  # the experiment as stored (hold-out 0.1 shown as 10 %)
    with engine.db.reader() as session:
        [entry] = session.scalars(select(AuditLog).where(AuditLog.action == "decision.save"))
    assert (entry.actor, entry.object_name, entry.version) == ("marketer", "monthly-statement/statement.insert", 2)


def test_a_bad_rule_is_refused_with_its_reason_and_the_form_kept(console_as, population):
    client, csrf = console_as("marketer")
    form = {**_form(client.get(SLOT).get_data(as_text=True)), "csrf_token": csrf, "rule-0-when": 'tier == "vip" and',
            "action": "save"}
    refused = client.post(SLOT, data=form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "This decision has a problem: rule 1 (vip):" in page
    assert 'value="tier == &#34;vip&#34; and"' in page  # what was typed is kept


def test_viewing_needs_decisions_view_and_changing_decisions_edit(console_as, population):
    viewer, csrf = console_as("viewer")
    page = viewer.get(SLOT).get_data(as_text=True)
    assert "Save as a new version" not in page and "disabled" in page
    assert viewer.post(SLOT, data={"csrf_token": csrf, "action": "save"}).status_code == 403
    service, _ = console_as("service")
    assert service.get("/console/decisions").status_code == 403
