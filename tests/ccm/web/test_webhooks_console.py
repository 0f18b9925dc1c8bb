"""The console's Webhooks page (``webhooks:manage``): an admin adds a subscription and sees
its secret once (never in the session), disables, tests and deletes it, each audited;
others are refused; at phone width in a real browser, with the keyboard."""
from __future__ import annotations

from sqlalchemy import select

from ccm.models.authoring import AuditLog
from ccm.models.webhooks import WebhookDelivery

from .conftest import PHONE, browser_sign_in, fits

HOOK = {"name": "crm", "url": "https://crm.example.com/hooks", "event_types": ["run.completed", "template.approved"]}


def test_an_admin_adds_disables_tests_and_deletes_a_subscription(console_as, engine):
    client, csrf = console_as("admin-user")
    assert "Webhooks" in client.get("/console/").get_data(as_text=True)
    made = client.post("/console/webhooks/new", data={**HOOK, "csrf_token": csrf})
    page = made.get_data(as_text=True)
    assert made.status_code == 200 and "Subscription crm created" in page
    secret = page.split('id="new-secret" readonly value="', 1)[1].split('"', 1)[0]
    assert secret.startswith("whsec_")
    cookies = " ".join(cookie.value for cookie in client._cookies.values())
    assert secret not in cookies
    listed = client.get("/console/webhooks").get_data(as_text=True)
    assert "https://crm.example.com/hooks" in listed and secret not in listed
    refused = client.post("/console/webhooks/new", data={**HOOK, "url": "ftp://x", "csrf_token": csrf})
    assert refused.status_code == 422 and "only http" in refused.get_data(as_text=True)
    assert client.post("/console/webhooks/1/test", data={"csrf_token": csrf}).status_code == 302
    with engine.db.reader() as session:
        assert session.scalar(select(WebhookDelivery.event_type)) == "webhook.test"
    assert client.post("/console/webhooks/1/active", data={"active": "0", "csrf_token": csrf}).status_code == 302
    assert "disabled" in client.get("/console/webhooks").get_data(as_text=True)
    assert client.post("/console/webhooks/1/delete", data={"csrf_token": csrf}).status_code == 302
    assert "No subscriptions yet." in client.get("/console/webhooks").get_data(as_text=True)
    with engine.db.reader() as session:
        actions = list(session.scalars(select(AuditLog.action).where(AuditLog.object_type == "webhook").order_by(AuditLog.id)))
        actors = set(session.scalars(select(AuditLog.actor).where(AuditLog.object_type == "webhook")))
    assert actions == ["webhook.create", "webhook.test", "webhook.change", "webhook.delete"] and actors == {"admin-user"}


def test_the_page_needs_webhooks_manage(console_as):
    client, csrf = console_as("marketer")
    assert client.get("/console/webhooks").status_code == 403
    assert client.post("/console/webhooks/new", data={**HOOK, "csrf_token": csrf}).status_code == 403
    assert "Webhooks" not in client.get("/console/").get_data(as_text=True)


def test_a_subscription_added_at_phone_width_with_the_keyboard(served, browser, tmp_path):
    page = browser.new_page(viewport=PHONE)
    browser_sign_in(page, served, "admin-user")
    page.goto(f"{served}/console/webhooks")
    page.get_by_label("Name", exact=True).fill("crm")
    page.get_by_label("URL (https://…)").fill(HOOK["url"])
    page.get_by_label("run.completed").check()
    page.get_by_label("URL (https://…)").focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.get_by_label("Signing secret").input_value().startswith("whsec_")
    assert fits(page), "the webhooks page is wider than 390 px"
    page.screenshot(path=str(tmp_path / "webhooks-390.png"), full_page=True)
    page.close()
