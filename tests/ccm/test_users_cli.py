"""``ccm users``, ``ccm login``: the first user at a shell, then only admins manage users;
the CLI acts as the signed-in user, never as a typed name."""
from __future__ import annotations

import json
import stat

from sqlalchemy import select

from ccm.models.authoring import AuditLog

PASSWORD = "a long test password"


def test_the_first_admin_then_signed_in_administration(runner, engine, tmp_path):
    token_file = tmp_path / "token"
    env = {"CCM_PASSWORD": PASSWORD, "CCM_TOKEN_FILE": str(token_file), "CCM_TOKEN": ""}
    first = runner.invoke(args=["users", "create", "ada", "--role", "admin"], env=env)
    assert first.exit_code == 0 and first.output.strip() == "user ada created with roles admin"
    second = runner.invoke(args=["users", "create", "ben", "--role", "billing"], env=env)
    assert second.exit_code == 1 and "sign in first: ccm login" in second.output  # no more shell bootstrap
    weak = runner.invoke(args=["login", "ada"], env={**env, "CCM_PASSWORD": "wrong password"})
    assert weak.exit_code == 1 and "wrong name or password" in weak.output

    login = runner.invoke(args=["login", "ada"], env=env)
    assert login.exit_code == 0 and "signed in as ada (admin)" in login.output
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert runner.invoke(args=["whoami"], env=env).output.strip() == "ada (admin)"
    assert runner.invoke(args=["users", "create", "ben", "--role", "billing"], env=env).exit_code == 0
    short = runner.invoke(args=["users", "create", "cy", "--role", "service"], env={**env, "CCM_PASSWORD": "short"})
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    unknown = runner.invoke(args=["users", "create", "cy", "--role", "superuser"], env=env)
    assert unknown.exit_code == 1 and "no such role: superuser" in unknown.output

    listed = json.loads(runner.invoke(args=["users", "list", "--json"], env=env).output)
    assert [(u["name"], u["roles"], u["active"]) for u in listed] == [("ada", ["admin"], True), ("ben", ["billing"], True)]
    roles = json.loads(runner.invoke(args=["users", "roles", "--json"], env=env).output)
    assert {r["name"] for r in roles} == {"admin", "approver", "billing", "marketer", "scheduler", "service", "viewer", "website"}
    assert runner.invoke(args=["users", "roles", "ben", "--role", "billing", "--role", "service"], env=env).exit_code == 0
    assert runner.invoke(args=["users", "roles", "ben"], env=env).output.strip() == "billing, service"
    typo = runner.invoke(args=["users", "role-permissions", "auditor", "audit:veiw"], env=env)
    assert typo.exit_code == 1 and "no such permission: audit:veiw (did you mean audit:view?)" in typo.output
    assert runner.invoke(args=["users", "role-permissions", "auditor", "audit:view", "runs:*"], env=env).exit_code == 0

    ben_file = tmp_path / "ben-token"
    ben = {**env, "CCM_TOKEN_FILE": str(ben_file)}
    assert runner.invoke(args=["login", "ben"], env=ben).exit_code == 0
    refused = runner.invoke(args=["users", "disable", "ada"], env=ben)
    assert refused.exit_code == 1 and "ben may not do this: it needs the permission users:manage" in refused.output
    assert runner.invoke(args=["users", "disable", "ben"], env=env).exit_code == 0
    assert runner.invoke(args=["whoami"], env=ben).exit_code == 1  # a disabled user's token stops at once

    assert runner.invoke(args=["logout"], env=env).output.strip() == "signed out"
    assert not token_file.exists() and runner.invoke(args=["whoami"], env=env).exit_code == 1
    with engine.db.reader() as session:
        trail = [(a.actor, a.action, a.object_name) for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert trail[0][1:] == ("user.create", "ada") and trail[0][0].startswith("shell:")
    assert ("ada", "user.create", "ben") in trail and ("ada", "user.disable", "ben") in trail
    assert ("ada", "signin.failed", "ada") in trail and ("ada", "role.permissions", "auditor") in trail


def test_erase_and_reprint_act_as_a_signed_in_user_with_the_password_again(runner, engine):
    from signed_in import as_user

    anonymous = runner.invoke(args=["customers", "erase", "C1", "--yes"], env={"CCM_TOKEN": ""})
    assert anonymous.exit_code == 1 and "sign in first" in anonymous.output
    billing = runner.invoke(args=["customers", "erase", "C1", "--yes"], env=as_user(engine, "ben", "billing"))
    assert billing.exit_code == 1 and "it needs the permission customers:erase" in billing.output
    wrong = runner.invoke(args=["customers", "erase", "C1", "--yes"], env={**as_user(engine, "sue", "service"),
                                                                          "CCM_PASSWORD": "not her password"})
    assert wrong.exit_code == 1 and "that password is not right; nothing was done" in wrong.output
    service = runner.invoke(args=["reprint", "1"], env=as_user(engine, "sue"))
    assert service.exit_code == 1 and "it needs the permission archive:reprint" in service.output


def test_demo_users_one_per_role_with_new_passwords_each_time(runner, engine):
    from ccm.staff import sign_in

    first = runner.invoke(args=["demo", "users"])
    assert first.exit_code == 0 and "/console after `ccm serve`" in first.output
    lines = [line.split() for line in first.output.splitlines()[1:]]
    assert [line[0] for line in lines] == ["admin", "marketer", "approver", "billing", "scheduler", "service", "viewer"]
    for name, password, _role in lines:
        assert sign_in(engine, name, password).staff.roles == (name,)
    again = runner.invoke(args=["demo", "users"]).output.splitlines()[1].split()
    assert again[1] != lines[0][1] and sign_in(engine, "admin", again[1]).staff is not None


def test_a_password_hashed_at_another_cost_still_signs_in_and_is_made_again(make_settings, tmp_path):
    from app import create_app
    from ccm.models.staff import User
    from ccm.staff import create_user, sign_in

    cheap = create_app(make_settings(tmp_path)).extensions["ccm"]  # the tests' low cost
    cheap.db.upgrade()
    create_user(cheap, "ada", PASSWORD, ["viewer"], actor="test")
    dearer = create_app(make_settings(tmp_path, console={"hash_memory_kib": 2048, "hash_time_cost": 2})).extensions["ccm"]
    assert sign_in(dearer, "ada", "not the password").staff is None
    assert sign_in(dearer, "ada", PASSWORD).staff is not None
    with dearer.db.reader() as session:
        stored = session.scalar(select(User.password_hash).where(User.name == "ada"))
    assert stored.startswith("$argon2id$") and "m=2048,t=2," in stored
    cheap.close()
    dearer.close()
