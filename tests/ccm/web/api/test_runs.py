"""Runs through the API: a statement cycle started once per Idempotency-Key (its e-mails
counted at a real SMTP server), followed, reconciled, its messages paged with their trace,
its print files downloaded and a printed statement reprinted; pause, resume and cancel;
keys without the permission refused."""
from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from ccm.runs import plan_run, wait

CYCLE = "2026-11"


@pytest.fixture
def server(smtp_server):
    return smtp_server()


@pytest.fixture
def settings(make_settings, tmp_path, database, server):
    return make_settings(tmp_path, channels={"email": server.url()}, **({"ccm": {"database_url": database}} if database else {}))


def test_a_cycle_started_by_the_api_is_sent_once_followed_reconciled_and_reprinted(loaded, app, key_for, server):
    client, billing = app.test_client(), key_for("billing")
    asked = {"communication": "statement", "cycle": CYCLE}
    assert client.post("/api/v1/runs", json=asked, headers=billing).status_code == 400  # it sends: a key is required
    started = client.post("/api/v1/runs", json=asked, headers={**billing, "Idempotency-Key": "nov"})
    assert started.status_code == 202, started.json
    run_id = started.json["id"]
    assert started.json["records_in"] == 6 and started.json["planned"] >= 6  # SMS reminders ride along
    assert wait(run_id, timeout=60)
    emailed = len(server.handler.messages)
    again = client.post("/api/v1/runs", json=asked, headers={**billing, "Idempotency-Key": "nov"})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true" and again.json["id"] == run_id
    assert wait(run_id, timeout=60) and len(server.handler.messages) == emailed > 0
    other = client.post("/api/v1/runs", json={**asked, "cycle": "2026-10"}, headers={**billing, "Idempotency-Key": "nov"})
    assert other.status_code == 409

    progress = client.get(f"/api/v1/runs/{run_id}", headers=billing).json
    assert progress["state"] in ("completed", "undelivered") and progress["total"] == progress["done"]
    assert progress["channels"] and sum(c["states"].get("sent", 0) for c in progress["channels"]) >= emailed
    books = client.get(f"/api/v1/runs/{run_id}/reconciliation", headers=billing).json
    assert books["balanced"] and books["records_in"] == books["planned"] == 6
    listed = client.get("/api/v1/runs?communication=monthly-statement", headers=billing).json
    assert [item["id"] for item in listed["items"]] == [run_id]

    seen, cursor = [], None
    while True:
        page = client.get(f"/api/v1/runs/{run_id}/messages", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=billing).json
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len({m["id"] for m in seen}) == len(seen) >= 6
    sent = client.get(f"/api/v1/runs/{run_id}/messages?state=sent&channel=print", headers=billing).json["items"]
    assert sent and all(m["state"] == "sent" and m["trace"]["statement.insert"]["rule"] for m in sent)

    files = client.get(f"/api/v1/runs/{run_id}/print-files", headers=billing).json
    stream = next(f for f in files if f["name"].endswith(".pdf"))
    downloaded = client.get(f"/api/v1/runs/{run_id}/print-files/{stream['folder']}/{stream['name']}", headers=billing)
    assert downloaded.status_code == 200 and len(downloaded.data) == stream["size"]
    downloaded.close()
    reprinted = client.post(f"/api/v1/runs/{run_id}/messages/{sent[0]['id']}/reprint", headers=billing)
    assert reprinted.status_code == 200 and reprinted.content_type == "application/pdf"
    assert PdfReader(io.BytesIO(reprinted.data)).pages
    assert client.post(f"/api/v1/runs/{run_id + 1}/messages/{sent[0]['id']}/reprint", headers=billing).status_code == 404


def test_pause_resume_and_cancel_need_runs_control(loaded, app, key_for, server):
    client, billing, service = app.test_client(), key_for("billing"), key_for("service")
    run_id = plan_run(loaded, "statement", CYCLE).run_id
    refused = client.post(f"/api/v1/runs/{run_id}/pause", headers=service)
    assert refused.status_code == 403 and refused.json["permission"] == "runs:control"
    started = client.post("/api/v1/runs", json={"communication": "statement", "cycle": CYCLE}, headers={**service, "Idempotency-Key": "x"})
    assert started.status_code == 403 and started.json["permission"] == "runs:start"

    paused = client.post(f"/api/v1/runs/{run_id}/pause", headers=billing)
    assert paused.status_code == 200 and paused.json["state"] == "paused"
    assert client.post(f"/api/v1/runs/{run_id}/pause", headers=billing).status_code == 409
    resumed = client.post(f"/api/v1/runs/{run_id}/resume", headers=billing)
    assert resumed.status_code == 200
    assert wait(run_id, timeout=60)
    assert client.get(f"/api/v1/runs/{run_id}", headers=billing).json["state"] in ("completed", "undelivered")
    assert len(server.handler.messages) > 0
    finished = client.post(f"/api/v1/runs/{run_id}/cancel", headers=billing)
    assert finished.status_code == 409 and "cannot be cancelled" in finished.json["detail"]
    assert client.post("/api/v1/runs/9999/cancel", headers=billing).status_code == 404
