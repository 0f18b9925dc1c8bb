"""Schedules through the API (create, read, change, pause, resume, remove, their executions,
a cron expression checked), each change audited; triggers (the event types communications
listen to, with their runs of the day); and an event's outcome as it stands now."""
from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import select

from ccm.feedback import create_token
from ccm.models.authoring import AuditLog
from ccm.scheduling import get_schedule
from ccm.scheduling.jobs import execute_schedule


def _audit(engine, name: str) -> list[tuple[str, str, dict]]:
    with engine.db.reader() as session:
        return [(row.action, row.actor, row.details) for row in session.scalars(
            select(AuditLog).where(AuditLog.object_type == "schedule", AuditLog.object_name == name).order_by(AuditLog.id))]


def test_a_schedule_made_changed_paused_and_removed_through_the_api(deals, key_for):
    app, engine = deals
    client, headers = app.test_client(), key_for("scheduler")
    body = {"name": "weekly-deals", "job": "campaign", "communication": "deals", "cron": "0 9 * * wed",
            "timezone": "Europe/Berlin", "options": {"local_time": "09:00"}}
    made = client.post("/api/v1/schedules", json=body, headers=headers)
    assert made.status_code == 201, made.json
    assert made.json["communication"] == "weekly-deals" and not made.json["paused"]
    fires = [dt.datetime.fromisoformat(t) for t in made.json["next_fire_times"]]
    assert len(fires) == 5 and all(t.weekday() == 2 and t.hour == 9 and t.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
                                   for t in fires)
    assert client.post("/api/v1/schedules", json=body, headers=headers).status_code == 409
    bad = [({**body, "name": "x", "cron": "0 25 * * *"}, "cron"), ({**body, "name": "x", "timezone": "Mars/Base"}, "timezone"),
           ({**body, "name": "x", "communication": "statement"}, "communication"),
           ({**body, "name": "x", "options": {"period": "current"}}, "period"),
           ({**body, "name": "x", "cron": None}, "cron")]
    for wrong, field in bad:
        refused = client.post("/api/v1/schedules", json=wrong, headers=headers)
        assert refused.status_code == 422 and refused.json["field"] == field, (field, refused.json)
    unknown_option = client.post("/api/v1/schedules", json={**body, "name": "x", "options": {"colour": "red"}}, headers=headers)
    assert unknown_option.status_code == 422

    changed = client.put("/api/v1/schedules/weekly-deals", json={**{k: v for k, v in body.items() if k != "name"}, "cron": "30 8 * * mon"},
                         headers=headers)
    assert changed.status_code == 200 and changed.json["cron"] == "30 8 * * mon"
    assert all(dt.datetime.fromisoformat(t).weekday() == 0 for t in changed.json["next_fire_times"])
    paused = client.post("/api/v1/schedules/weekly-deals/pause", headers=headers)
    assert paused.status_code == 200 and paused.json["paused"] and paused.json["next_fire_times"] == []
    assert client.post("/api/v1/schedules/weekly-deals/pause", headers=headers).status_code == 200  # again: nothing new
    assert client.post("/api/v1/schedules/weekly-deals/resume", headers=headers).json["next_fire_times"]
    assert client.get("/api/v1/schedules/weekly-deals", headers=key_for("viewer")).json["cron"] == "30 8 * * mon"
    assert client.put("/api/v1/schedules/weekly-deals", json={"job": "campaign"}, headers=key_for("viewer")).status_code == 403
    assert client.post("/api/v1/schedules/weekly-deals/pause", headers=key_for("marketer")).status_code == 403

    with engine.db.session() as session:  # an execution, as the scheduler records it
        schedule_id = get_schedule(session, "weekly-deals").id
    assert execute_schedule(engine, schedule_id, dt.datetime(2026, 11, 30, 7, 30), "test:1:aa").state == "completed"
    executions = client.get("/api/v1/schedules/weekly-deals/executions", headers=headers).json
    assert [(e["fire_time"], e["state"]) for e in executions["items"]] == [("2026-11-30T07:30:00Z", "completed")]
    assert executions["items"][0]["run_ids"] and executions["next_cursor"] is None

    assert client.delete("/api/v1/schedules/weekly-deals", headers=headers).status_code == 204
    assert client.get("/api/v1/schedules/weekly-deals", headers=headers).status_code == 404
    kept = client.get("/api/v1/schedules/weekly-deals/executions", headers=headers).json["items"]
    assert len(kept) == 1 and kept[0]["removed"]
    actions = _audit(engine, "weekly-deals")
    assert [a for a, _, _ in actions] == ["schedule.create", "schedule.edit", "schedule.pause", "schedule.resume", "schedule.remove"]
    assert actions[1][2] == {"cron": "0 9 * * wed → 30 8 * * mon"} and actions[0][1].startswith("system-0 (api:system-0.")


def test_schedules_are_listed_in_pages_and_a_cron_expression_is_checked(deals, key_for):
    app, _ = deals
    client, headers = app.test_client(), key_for("scheduler")
    for index in range(3):
        assert client.post("/api/v1/schedules", json={"name": f"refresh-{index}", "job": "segments-refresh",
                                                      "every_seconds": 3600 * (index + 1)}, headers=headers).status_code == 201
    first = client.get("/api/v1/schedules", query_string={"limit": 2}, headers=headers).json
    rest = client.get("/api/v1/schedules", query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=headers).json
    assert [s["name"] for s in first["items"] + rest["items"]] == ["refresh-0", "refresh-1", "refresh-2"]
    assert rest["next_cursor"] is None
    wrong = client.get("/api/v1/cron-check", query_string={"expression": "0 9 * * funday"}, headers=headers).json
    assert not wrong["valid"] and wrong["field"] == "weekday" and wrong["column"] == 9 and wrong["next_fire_times"] == []
    right = client.get("/api/v1/cron-check", query_string={"expression": "0 9 1 * *", "timezone": "Asia/Shanghai"}, headers=headers).json
    assert right["valid"] and all(t.endswith("+08:00") and "-01T09:00:00" in t for t in right["next_fire_times"])
    zone = client.get("/api/v1/cron-check", query_string={"expression": "0 9 1 * *", "timezone": "Nowhere"}, headers=headers)
    assert zone.status_code == 422 and zone.json["field"] == "timezone"


def test_triggers_and_an_event_outcome_as_it_stands_now(deals, key_for):
    app, engine = deals
    client, headers = app.test_client(), key_for("scheduler")
    listed = client.get("/api/v1/triggers", headers=headers)
    assert listed.status_code == 200
    payment = next(t for t in listed.json["items"] if t["event_type"] == "payment.received")
    assert payment["communications"][0]["communication"] == "payment-received"
    assert payment["communications"][0]["channels"] == ["email", "sms"] and payment["communications"][0]["runs"] == []
    assert client.get("/api/v1/triggers/nothing.happened", headers=headers).status_code == 404

    events = {"Authorization": f"Bearer {create_token(engine, 'billing-system')}"}  # the narrow event-ingestion key
    sent = client.post("/api/v1/events", json={"id": "pay/77", "type": "payment.received", "customer": "E001", "amount": "5.00",
                                               "currency": "USD"}, headers=events)
    assert sent.status_code == 202, sent.json
    (message,) = sent.json["messages"]
    deadline = time.monotonic() + 30
    while True:  # delivered by the web process's dispatcher thread
        outcome = client.get("/api/v1/events/pay/77", headers=events)
        assert outcome.status_code == 200, outcome.json
        if outcome.json["messages"][0]["state"] != "pending" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert outcome.json["result"] == "triggered" and outcome.json["type"] == "payment.received" and outcome.json["amount"] == "5.00"
    (now,) = outcome.json["messages"]
    assert now["message_id"] == message["message_id"] and now["state"] == "sent" and now["sent_at"].endswith("Z")
    runs = client.get("/api/v1/triggers/payment.received", headers=headers).json["communications"][0]["runs"]
    assert len(runs) == 1 and runs[0]["messages"] == {"sent": 1} and runs[0]["cycle"] == dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")

    recorded = client.post("/api/v1/events", json={"id": "buy-1", "type": "conversion", "customer": "E001", "amount": "12.50",
                                                   "currency": "USD"}, headers=events)
    assert recorded.status_code == 201
    looked = client.get("/api/v1/events/buy-1", headers=events).json
    assert looked["result"] == "recorded" and looked["type"] == "conversion" and looked["amount"] == "12.50" and looked["messages"] == []
    assert client.get("/api/v1/events/never-sent", headers=events).status_code == 404
    assert client.get("/api/v1/triggers", headers=events).status_code in (401, 403)  # the narrow key sends events, nothing else
