"""Webhook subscriptions through the API: created with the secret shown once, listed, read,
changed, tested and deleted by a key with ``webhooks:manage``; refused (403 naming it)
without; bad URLs and event types are 422, a name taken 409. A test event reaches a real
receiver on 127.0.0.1 with a valid signature."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from ccm import outbound


@pytest.fixture
def settings(make_settings, tmp_path, database):
    return make_settings(tmp_path, webhooks={"allow_private": True, "retry_base_seconds": 0, "retry_cap_seconds": 1},
                         **({"ccm": {"database_url": database}} if database else {}))


@pytest.fixture
def receiver():
    got: list[tuple[dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append((dict(self.headers.items()), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/in", got
    server.shutdown()
    server.server_close()
    thread.join()


def test_subscriptions_made_read_changed_tested_and_deleted(app, engine, key_for, receiver):
    url, got = receiver
    client, admin = app.test_client(), key_for("admin")
    made = client.post("/api/v1/webhooks", json={"name": "crm", "url": url, "event_types": ["run.completed", "template.approved"]},
                       headers=admin)
    assert made.status_code == 201, made.json
    secret, ident = made.json["secret"], made.json["id"]
    assert secret.startswith("whsec_") and made.json["deliveries"] == {"pending": 0, "failed": 0, "delivered": 0, "dead": 0}
    shown = client.get(f"/api/v1/webhooks/{ident}", headers=admin)
    assert shown.status_code == 200 and "secret" not in shown.json and secret not in shown.get_data(as_text=True)
    assert [s["name"] for s in client.get("/api/v1/webhooks", headers=admin).json["items"]] == ["crm"]
    taken = client.post("/api/v1/webhooks", json={"name": "crm", "url": url, "event_types": ["run.completed"]}, headers=admin)
    assert taken.status_code == 409 and taken.json["field"] == "name"
    changed = client.patch(f"/api/v1/webhooks/{ident}", json={"event_types": ["message.dead"], "active": False}, headers=admin)
    assert changed.status_code == 200 and changed.json["event_types"] == ["message.dead"] and changed.json["active"] is False
    assert client.post(f"/api/v1/webhooks/{ident}/test", headers=admin).status_code == 409  # disabled
    client.patch(f"/api/v1/webhooks/{ident}", json={"active": True}, headers=admin)
    queued = client.post(f"/api/v1/webhooks/{ident}/test", headers=admin)
    assert queued.status_code == 202 and queued.json["state"] == "pending"
    assert outbound.deliver_due(engine).delivered == 1
    headers, body = got[0]
    assert Webhook(secret).verify(body, headers)["type"] == "webhook.test"
    [delivery] = client.get(f"/api/v1/webhooks/{ident}/deliveries", headers=admin).json["items"]
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == ("delivered", 1, 204)
    assert client.delete(f"/api/v1/webhooks/{ident}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/webhooks/{ident}", headers=admin).status_code == 404


def test_subscriptions_at_the_cli_and_old_deliveries_pruned(engine, runner, receiver):
    """``ccm webhooks``: made with the secret printed once, tested, sent, shown, disabled and
    removed by a signed-in admin, audited; deliveries done more than keep_days ago deleted."""
    import datetime as dt

    from sqlalchemy import select, update

    from ccm.models.authoring import AuditLog
    from ccm.models.webhooks import WebhookDelivery
    from signed_in import as_user

    url, got = receiver
    admin = as_user(engine, "root", "admin")
    made = runner.invoke(args=["webhooks", "create", "crm", url, "--event", "run.completed", "--event", "message.dead"], env=admin)
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    listed = runner.invoke(args=["webhooks", "list", "--json"], env=admin)
    assert '"name": "crm"' in listed.output and secret not in listed.output
    assert runner.invoke(args=["webhooks", "test", "crm"], env=admin).exit_code == 0
    assert runner.invoke(args=["webhooks", "send"], env=admin).output.startswith("1 delivered")
    assert Webhook(secret).verify(got[0][1], got[0][0])["type"] == "webhook.test"
    shown = runner.invoke(args=["webhooks", "deliveries", "crm"], env=admin).output
    assert "webhook.test" in shown and "delivered" in shown and "1 attempt" in shown
    disabled = runner.invoke(args=["webhooks", "change", "crm", "--disable", "--event", "run.completed"], env=admin)
    assert disabled.exit_code == 0 and "disabled, run.completed" in disabled.output
    assert runner.invoke(args=["webhooks", "change", "nobody", "--enable"], env=admin).exit_code == 1
    refused = runner.invoke(args=["webhooks", "list"], env=as_user(engine, "vera", "viewer"))
    assert refused.exit_code == 1 and "webhooks:manage" in refused.output

    assert runner.invoke(args=["webhooks", "prune"], env=admin).output.startswith("0 deliveries deleted")  # done today: kept
    with engine.db.session() as session:  # its last attempt 31 days ago
        session.execute(update(WebhookDelivery).values(updated_at=WebhookDelivery.updated_at - dt.timedelta(days=31)))
    assert runner.invoke(args=["webhooks", "prune"], env=admin).output.startswith("1 deliveries deleted")
    assert "no deliveries" in runner.invoke(args=["webhooks", "deliveries", "crm"], env=admin).output
    assert runner.invoke(args=["webhooks", "remove", "1"], env=admin).exit_code == 0
    assert "no subscriptions yet" in runner.invoke(args=["webhooks", "list"], env=admin).output
    with engine.db.reader() as session:
        actions = list(session.scalars(select(AuditLog.action).where(AuditLog.object_type == "webhook").order_by(AuditLog.id)))
    assert actions == ["webhook.create", "webhook.test", "webhook.change", "webhook.delete"]


def test_a_delivery_waiting_for_its_retry_is_not_pruned(engine):
    import datetime as dt

    from ccm.models import utcnow
    from ccm.models.webhooks import WebhookDelivery

    made = outbound.create_subscription(engine, "crm", "http://127.0.0.1:9/in", ["run.completed"], "test")
    long_ago = utcnow() - dt.timedelta(days=90)
    with engine.db.session() as session:
        for state in ("delivered", "dead", "failed", "pending"):
            session.add(WebhookDelivery(subscription_id=made.subscription.id, event_type="run.completed", event_id=f"e-{state}",
                                        payload={}, state=state, created_at=long_ago, updated_at=long_ago))
    assert outbound.prune_deliveries(engine) == 2
    left = outbound.deliveries_after(engine, made.subscription.id, None, 10)
    assert sorted(d.state for d in left) == ["failed", "pending"]


def test_bad_urls_and_event_types_are_refused(app, engine, key_for):
    client, admin = app.test_client(), key_for("admin")
    engine.settings["webhooks"]["allow_private"] = False
    for url in ("ftp://example.com/x", "http://127.0.0.1:8000/x", "https://exa mple.com/", "http://[::1/"):
        refused = client.post("/api/v1/webhooks", json={"name": "x", "url": url, "event_types": ["run.completed"]}, headers=admin)
        assert refused.status_code == 422 and refused.json["field"] == "url", (url, refused.json)
    wrong = client.post("/api/v1/webhooks", json={"name": "x", "url": "https://example.com/", "event_types": ["run.exploded"]},
                        headers=admin)
    assert wrong.status_code == 422 and wrong.json["field"].startswith("event_types")


def test_a_key_without_webhooks_manage_is_refused(app, key_for):
    client = app.test_client()
    for role in ("viewer", "marketer"):
        refused = client.get("/api/v1/webhooks", headers=key_for(role))
        assert refused.status_code == 403 and refused.json["permission"] == "webhooks:manage"
    made = client.post("/api/v1/webhooks", json={"name": "x", "url": "https://example.com/", "event_types": ["run.completed"]},
                       headers=key_for("service"))
    assert made.status_code == 403
    assert client.get("/api/v1/webhooks").status_code == 401
