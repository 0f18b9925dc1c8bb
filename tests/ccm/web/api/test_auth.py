"""Keys of service accounts: made and revoked by an admin at the CLI (audited), shown once,
refused when revoked or expired (401) or without the operation's permission (403 naming
it); personal tokens of staff act as their user; event tokens post events only."""
from __future__ import annotations

import time_machine
from sqlalchemy import select

from ccm.feedback import create_token
from ccm.models.authoring import AuditLog
from ccm.staff import issue_token, sign_in

from signed_in import as_user

from .conftest import bearer

CUSTOMER = {"name": "Ada Lovelace", "email": "ada@example.com", "country": "GB"}


def test_keys_made_listed_and_revoked_at_the_cli_by_an_admin(app, engine, runner):
    admin = as_user(engine, "root", "admin")
    made = runner.invoke(args=["service-accounts", "create", "crm", "--role", "service"], env=admin)
    assert made.exit_code == 0, made.output
    created = runner.invoke(args=["keys", "create", "crm", "--days", "10"], env=admin)
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("ccmk_")
    client = app.test_client()
    assert client.put("/api/v1/customers/C1", json=CUSTOMER, headers=bearer(key)).status_code == 200
    listed = runner.invoke(args=["keys", "list", "--json"], env=admin)
    assert key not in listed.output and '"account": "crm"' in listed.output
    name = next(line.split('"')[3] for line in listed.output.splitlines() if '"name"' in line)
    assert runner.invoke(args=["keys", "revoke", name], env=admin).exit_code == 0
    refused = client.get("/api/v1/customers/C1", headers=bearer(key))
    assert refused.status_code == 401 and refused.content_type == "application/problem+json"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    with engine.db.reader() as session:
        actions = set(session.scalars(select(AuditLog.action)))
    assert {"service_account.create", "key.create", "key.revoke"} <= actions


def test_keys_need_an_admin(engine, runner):
    viewer = as_user(engine, "vera", "viewer")
    refused = runner.invoke(args=["service-accounts", "create", "crm", "--role", "admin"], env=viewer)
    assert refused.exit_code == 1 and "users:manage" in refused.output


def test_a_key_without_the_permission_is_refused_with_403_naming_it(app, key_for):
    client = app.test_client()
    viewer = key_for("viewer")
    assert client.get("/api/v1/customers", headers=viewer).status_code == 200
    refused = client.put("/api/v1/customers/C1", json=CUSTOMER, headers=viewer)
    assert refused.status_code == 403 and refused.content_type == "application/problem+json"
    assert refused.json["permission"] == "customers:edit" and "customers:edit" in refused.json["detail"]


def test_an_expired_key_is_refused(app, key_for):
    client = app.test_client()
    headers = key_for("service", days=1)
    assert client.get("/api/v1/customers", headers=headers).status_code == 200
    with time_machine.travel("2099-01-01", tick=False):
        assert client.get("/api/v1/customers", headers=headers).status_code == 401


def test_a_service_account_cannot_sign_in(engine, key_for):
    key_for("admin")
    assert sign_in(engine, "system-0", "!").staff is None


def test_personal_tokens_act_as_their_user_and_event_tokens_only_post_events(app, engine):
    client = app.test_client()
    as_user(engine, "mara")  # a marketer: may view customers, not change them
    from ccm.staff import get_staff
    from ccm.models.staff import User

    with engine.db.reader() as session:
        mara = get_staff(engine, session.scalar(select(User.id).where(User.name == "mara")))
    personal = bearer(issue_token(engine, mara))
    assert client.get("/api/v1/customers", headers=personal).status_code == 200
    assert client.put("/api/v1/customers/C1", json=CUSTOMER, headers=personal).status_code == 403
    events = bearer(create_token(engine, "feed"))
    assert client.get("/api/v1/customers", headers=events).status_code == 401
    assert client.post("/api/v1/events", json={"id": "1", "type": "payment", "customer": "NOBODY"}, headers=events).status_code == 422
