"""The console's doors: sign-in, lockout, the second factor, roles on every route, CSRF,
fresh re-authentication, and the audit log of it all."""
from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from ccm.models.authoring import AuditLog
from ccm.staff import PERMISSIONS

from .conftest import PASSWORD, csrf_of, sign_in


def test_an_anonymous_request_is_sent_to_sign_in(app, staff):
    client = app.test_client()
    answer = client.get("/console/runs")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/console/signin?next=")
    htmx = client.get("/console/runs", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].startswith("/console/signin")


def test_every_console_route_declares_its_permission(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console.") and rule.endpoint != "console.static":
            view = app.view_functions[rule.endpoint]
            permission = getattr(view, "permission", None)
            assert permission in ("public", "signed-in", *PERMISSIONS), f"{rule.rule} declares no permission"


def test_sign_in_shows_the_dashboard_and_sign_out_ends_the_session(console_as, engine):
    client, csrf = console_as("billing")
    page = client.get("/console/").get_data(as_text=True)
    assert "Runs in progress" in page and "Audit" not in page  # billing may not see the audit log
    assert client.post("/console/signout", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/console/").status_code == 302
    with engine.db.reader() as session:
        actions = list(session.scalars(select(AuditLog.action).where(AuditLog.actor == "billing")))
    assert actions == ["signin", "signout"]


def test_a_missing_permission_is_a_403_page_naming_it(console_as):
    client, _ = console_as("marketer")
    answer = client.get("/console/tasks")
    assert answer.status_code == 403
    page = answer.get_data(as_text=True)
    assert "tasks:view" in page and "service" in page  # the permission, and a role that has it
    audit = client.get("/console/audit")
    assert audit.status_code == 403 and "audit:view" in audit.get_data(as_text=True)


def test_wrong_passwords_lock_the_account(app, staff, engine):
    client = app.test_client()
    csrf = csrf_of(client.get("/console/signin").get_data(as_text=True))
    for _ in range(5):
        refused = client.post("/console/signin", data={"name": "service", "password": "wrong password!", "csrf_token": csrf})
        assert refused.status_code == 401
    locked = client.post("/console/signin", data={"name": "service", "password": PASSWORD, "csrf_token": csrf})
    assert locked.status_code == 401 and "locked" in locked.get_data(as_text=True)
    unknown = client.post("/console/signin", data={"name": "nobody", "password": PASSWORD, "csrf_token": csrf})
    assert "Wrong name or password" in unknown.get_data(as_text=True)


def test_a_form_without_its_csrf_token_is_refused(console_as, app, staff):
    client, _ = console_as("billing")
    answer = client.post("/console/signout")
    assert answer.status_code == 400 and "expired" in answer.get_data(as_text=True)
    assert client.get("/console/").status_code == 200  # still signed in: nothing was done
    anonymous = app.test_client()
    assert anonymous.post("/console/signin", data={"name": "billing", "password": PASSWORD}).status_code == 400


def test_a_second_factor_is_enrolled_and_then_asked_for(console_as, app):
    client, csrf = console_as("viewer")
    page = client.get("/console/account/totp").get_data(as_text=True)
    secret = page.split('id="totp-secret">')[1].split("<")[0]
    assert "<svg" in page
    wrong = client.post("/console/account/totp", data={"code": "000000", "csrf_token": csrf}, follow_redirects=True)
    assert "not right" in wrong.get_data(as_text=True)
    client.post("/console/account/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf})
    fresh = app.test_client()
    csrf = csrf_of(fresh.get("/console/signin").get_data(as_text=True))
    step = fresh.post("/console/signin", data={"name": "viewer", "password": PASSWORD, "csrf_token": csrf})
    assert step.status_code == 200 and "authenticator" in step.get_data(as_text=True)
    assert fresh.get("/console/").status_code == 302  # not signed in before the code
    done = fresh.post("/console/signin/code", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf})
    assert done.status_code == 302 and fresh.get("/console/").status_code == 200


def test_the_audit_page_filters(console_as):
    client, _ = console_as("admin-user")
    page = client.get("/console/audit?action=signin&actor=admin-user").get_data(as_text=True)
    assert ">signin</td>" in page and ">user.create</td>" not in page
    created = client.get("/console/audit?action=user").get_data(as_text=True)
    assert ">user.create</td>" in created and ">signin</td>" not in created


def test_the_console_speaks_the_users_language(console_as, engine):
    client, csrf = console_as("viewer")
    client.post("/console/account/settings", data={"locale": "zh_Hans", "timezone": "Asia/Shanghai", "csrf_token": csrf})
    page = client.get("/console/").get_data(as_text=True)
    assert 'lang="zh-Hans"' in page


def test_security_headers_on_console_pages(console_as):
    client, _ = console_as("viewer")
    answer = client.get("/console/")
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
    with client.get("/console/static/vendor/htmx.min.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"


def test_a_password_change_ends_the_users_other_sessions(console_as, engine):
    phone, _ = console_as("viewer")
    desk, csrf = console_as("viewer")
    changed = desk.post("/console/account/password", data={"current": PASSWORD, "new": "a brand new passphrase",
                                                           "again": "a brand new passphrase", "csrf_token": csrf},
                        follow_redirects=True)
    assert "Other sessions of yours have ended" in changed.get_data(as_text=True)
    assert desk.get("/console/").status_code == 200
    assert phone.get("/console/").status_code == 302  # sent to sign in again


def test_sign_in_attempts_are_limited_per_address_across_names(make_settings, tmp_path):
    from app import create_app

    app = create_app(make_settings(tmp_path, console={"signin_rate_limit": "3/minute"}))
    app.extensions["ccm"].db.upgrade()
    client = app.test_client()
    csrf = csrf_of(client.get("/console/signin").get_data(as_text=True))
    answers = [client.post("/console/signin", data={"name": f"guess{n}", "password": "password guess", "csrf_token": csrf}).status_code
               for n in range(4)]
    assert answers == [401, 401, 401, 429]
    assert client.get("/console/signin").status_code == 200  # the page itself is not limited
