"""Communications, campaigns and reports through the API: campaigns created and changed with
the studio's checks (each refusal naming its field), a campaign's report against its budget
and forecast with its experiment, a run's and a communication's report, an experiment's
result, each refused without its permission; and a segment deleted only when nothing uses it."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ccm.decisions import save_decision
from ccm.feedback import communication_report
from ccm.models import Run
from ccm.models.authoring import AuditLog

CAMPAIGN = {"name": "autumn-deals", "title": "Autumn deals", "goal": "sell", "communication": "weekly-deals",
            "channels": ["email", "sms"], "starts_on": (dt.date.today() - dt.timedelta(days=1)).isoformat(),
            "budget": "1500.00", "currency": "usd", "forecast_responses": 10, "forecast_revenue": "300"}


def test_communications_are_listed_and_read(deals, key_for):
    app, _ = deals
    client, headers = app.test_client(), key_for("scheduler")
    first = client.get("/api/v1/communications", query_string={"limit": 1}, headers=headers).json
    rest = client.get("/api/v1/communications", query_string={"cursor": first["next_cursor"]}, headers=headers).json
    names = [c["name"] for c in first["items"] + rest["items"]]
    assert "weekly-deals" in names and len(names) == len(set(names)) and rest["next_cursor"] is None
    deals_ = client.get("/api/v1/communications/deals", headers=headers).json
    assert deals_["name"] == "weekly-deals" and deals_["config"]["slots"]
    assert client.get("/api/v1/communications/nothing", headers=headers).status_code == 404
    assert client.get("/api/v1/communications", headers=key_for("service")).json["permission"] == "campaigns:view"


def test_campaigns_created_changed_and_reported(deals, key_for):
    app, engine = deals
    client, headers = app.test_client(), key_for("marketer")
    made = client.post("/api/v1/campaigns", json=CAMPAIGN, headers=headers)
    assert made.status_code == 201, made.json
    assert made.json["currency"] == "USD" and made.json["budget"] == "1500.00" and made.json["owner"] == "system-0"
    assert client.post("/api/v1/campaigns", json=CAMPAIGN, headers=headers).status_code == 409
    bad = client.post("/api/v1/campaigns", json={**CAMPAIGN, "name": "other", "communication": "nothing"}, headers=headers)
    assert bad.status_code == 422 and bad.json["field"] == "communication"
    bad = client.post("/api/v1/campaigns", json={**CAMPAIGN, "name": "other", "ends_on": "2000-01-01"}, headers=headers)
    assert bad.status_code == 422 and bad.json["field"] == "ends_on"
    bad = client.post("/api/v1/campaigns", json={**CAMPAIGN, "name": "other", "budget": "-1"}, headers=headers)
    assert bad.status_code == 422 and bad.json["field"] == "budget"
    change = {key: value for key, value in CAMPAIGN.items() if key != "name"}
    changed = client.put("/api/v1/campaigns/autumn-deals", json={**change, "budget": "2000", "owner": "Ann"}, headers=headers)
    assert changed.status_code == 200 and changed.json["budget"] == "2000.00" and changed.json["owner"] == "Ann"
    assert client.put("/api/v1/campaigns/nothing", json=change, headers=headers).status_code == 404
    listed = client.get("/api/v1/campaigns", headers=headers).json["items"]
    assert [c["name"] for c in listed] == ["autumn-deals"]
    assert client.get("/api/v1/campaigns/autumn-deals", headers=headers).json["title"] == "Autumn deals"
    report = client.get("/api/v1/campaigns/autumn-deals/report", headers=headers)
    assert report.status_code == 200, report.json
    body = report.json
    assert len(body["runs"]) == 1 and body["report"]["total"]["sent"] > 0
    assert body["spend"] == body["report"]["total"]["cost"] and body["budget_used"] == float(body["spend"]) / 2000
    experiment = next(e for e in body["experiments"] if e["name"] == "weekly-deals-offer")
    assert "holdout" in experiment["variants"] and experiment["versus_holdout"]
    assert {"lift", "p_value", "significant"} <= set(experiment["versus_holdout"][0])
    assert client.post("/api/v1/campaigns", json={**CAMPAIGN, "name": "x"}, headers=key_for("approver")).json["permission"] == "campaigns:edit"
    with engine.db.reader() as session:
        actions = set(session.scalars(select(AuditLog.action).where(AuditLog.object_name == "autumn-deals")))
    assert {"campaign.create", "campaign.change"} <= actions


def test_reports_of_a_run_a_communication_and_an_experiment(deals, key_for):
    app, engine = deals
    client, headers = app.test_client(), key_for("viewer")
    with engine.db.reader() as session:
        run_id = session.scalar(select(Run.id))
        expected = communication_report(session, "deals", engine.settings["costs"], engine.settings["feedback"]["receipt_channels"])
    run = client.get(f"/api/v1/reports/runs/{run_id}", headers=headers)
    assert run.status_code == 200 and run.json["runs"] == [run_id] and "channel" in run.json["by"]
    assert client.get("/api/v1/reports/runs/99999", headers=headers).status_code == 404
    communication = client.get("/api/v1/reports/communications/deals", headers=headers).json
    assert communication["total"] == expected.total.to_json()
    result = client.get("/api/v1/reports/communications/deals/experiments/weekly-deals-offer", headers=headers)
    assert result.status_code == 200
    assert result.json == next(e for e in expected.experiments if e.name == "weekly-deals-offer").to_json()
    missing = client.get("/api/v1/reports/communications/deals/experiments/nothing", headers=headers)
    assert missing.status_code == 404 and "weekly-deals-offer" in missing.json["detail"]
    assert client.get("/api/v1/reports/communications/monthly-statement", headers=headers).status_code == 404
    assert client.get(f"/api/v1/reports/runs/{run_id}", headers=key_for("service")).json["permission"] == "reports:view"


def test_a_segment_is_deleted_only_when_nothing_uses_it(deals, key_for):
    app, engine = deals
    client, headers = app.test_client(), key_for("marketer")
    client.post("/api/v1/segments", json={"name": "base", "expression": "true"}, headers=headers)
    client.post("/api/v1/segments", json={"name": "on-top", "expression": 'in_segment("base")'}, headers=headers)
    used = client.delete("/api/v1/segments/base", headers=headers)
    assert used.status_code == 409 and "segment on-top" in used.json["detail"]
    client.post("/api/v1/campaigns", json={**CAMPAIGN, "audience": "on-top"}, headers=headers)
    used = client.delete("/api/v1/segments/on-top", headers=headers)
    assert used.status_code == 409 and "campaign autumn-deals" in used.json["detail"]
    change = {key: value for key, value in CAMPAIGN.items() if key != "name"}
    client.put("/api/v1/campaigns/autumn-deals", json=change, headers=headers)
    rules = {"rules": [{"name": "top", "when": 'in_segment("on-top")', "then": "offers/energy_saver.html"}],
             "default": "offers/energy_saver.html"}
    with engine.db.session() as session:
        save_decision(session, "deals", "email.offer", rules, check_contents=False)
    used = client.delete("/api/v1/segments/on-top", headers=headers)
    assert used.status_code == 409 and "decision weekly-deals/email.offer" in used.json["detail"]
    with engine.db.session() as session:
        save_decision(session, "deals", "email.offer", {"rules": [], "default": "offers/energy_saver.html"}, check_contents=False)
    assert client.delete("/api/v1/segments/on-top", headers=key_for("viewer")).json["permission"] == "segments:edit"
    assert client.delete("/api/v1/segments/on-top", headers=headers).status_code == 204
    assert client.delete("/api/v1/segments/base", headers=headers).status_code == 204
    assert client.get("/api/v1/segments/base", headers=headers).status_code == 404
    assert client.delete("/api/v1/segments/base", headers=headers).status_code == 404
    with engine.db.reader() as session:
        assert set(session.scalars(select(AuditLog.object_name).where(AuditLog.action == "segment.delete"))) == {"base", "on-top"}
