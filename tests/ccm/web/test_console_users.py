"""Users and roles in the console: only users:manage, with a fresh sign-in, audited."""
from __future__ import annotations

from sqlalchemy import select

from ccm.models.authoring import AuditLog
from ccm.staff import list_users, sign_in

from .conftest import PASSWORD


def test_an_admin_makes_a_user_gives_roles_and_disables_them(console_as, engine):
    client, csrf = console_as("admin-user")
    made = client.post("/console/users/new", data={"name": "nina", "password": PASSWORD, "roles": ["service"],
                                                   "csrf_token": csrf}, follow_redirects=True)
    assert "User nina created." in made.get_data(as_text=True)
    client.post("/console/users/nina/roles", data={"roles": ["service", "billing"], "csrf_token": csrf})
    assert next(u for u in list_users(engine) if u["name"] == "nina")["roles"] == ["billing", "service"]
    client.post("/console/users/nina/active", data={"active": "0", "csrf_token": csrf})
    assert sign_in(engine, "nina", PASSWORD).staff is None
    weak = client.post("/console/users/new", data={"name": "omar", "password": "short", "roles": ["viewer"], "csrf_token": csrf},
                       follow_redirects=True)
    assert "at least 12 characters" in weak.get_data(as_text=True)
    client.post("/console/roles/auditor", data={"permissions": ["audit:view", "runs:view"], "csrf_token": csrf})
    assert "auditor" in client.get("/console/users").get_data(as_text=True)
    with engine.db.reader() as session:
        trail = {(a.actor, a.action, a.object_name) for a in session.scalars(select(AuditLog))}
    assert {("admin-user", "user.create", "nina"), ("admin-user", "user.roles", "nina"), ("admin-user", "user.disable", "nina"),
            ("admin-user", "role.permissions", "auditor")} <= trail


def test_managing_users_needs_the_permission_and_a_fresh_sign_in(console_as, engine):
    client, csrf = console_as("billing")
    assert client.get("/console/users").status_code == 403
    assert client.post("/console/users/billing/roles", data={"roles": ["admin"], "csrf_token": csrf}).status_code == 403
    admin, csrf = console_as("admin-user")
    with admin.session_transaction() as session:
        session["fresh_at"] = 0  # signed in long ago
    stale = admin.post("/console/users/billing/roles", data={"roles": ["admin"], "csrf_token": csrf},
                       headers={"Referer": "http://localhost/console/users"})
    assert stale.status_code == 302 and stale.headers["Location"].startswith("/console/confirm?next=/console/users")
    assert next(u for u in list_users(engine) if u["name"] == "billing")["roles"] == ["billing"]  # nothing done
    wrong = admin.post("/console/confirm", data={"password": "not it at all", "next": "/console/users", "csrf_token": csrf})
    assert wrong.status_code == 401
    confirmed = admin.post("/console/confirm", data={"password": PASSWORD, "next": "/console/users", "csrf_token": csrf})
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/console/users"
    evil = admin.post("/console/confirm", data={"password": PASSWORD, "next": "https://evil.example/", "csrf_token": csrf})
    assert evil.headers["Location"] == "/console/"  # never sent elsewhere
    assert admin.post("/console/users/billing/roles", data={"roles": ["billing", "viewer"], "csrf_token": csrf}).status_code == 302
    assert next(u for u in list_users(engine) if u["name"] == "billing")["roles"] == ["billing", "viewer"]
