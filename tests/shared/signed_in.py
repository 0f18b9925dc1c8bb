"""Commands run as a member of staff: ``runner.invoke(args=[...], env=as_user(engine, "mara"))``
creates the user if needed (roles of ``ROLES``, or those given) and signs the CLI in with a
personal token, as ``ccm login`` does; the password answers the confirmation of approvals."""
from __future__ import annotations

from sqlalchemy import select

from ccm.models.staff import User
from ccm.staff import as_staff, create_user, issue_token

PASSWORD = "a long test password"
ROLES = {"mara": ("marketer", "approver"), "olga": ("approver", "marketer"), "mallory": ("marketer", "approver"),
         "bob": ("marketer",)}


def as_user(engine, name: str, *roles: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with engine.db.reader() as session:
        user = session.scalar(select(User).where(User.name == name))
        staff = as_staff(user) if user is not None else None
    if staff is None:
        staff = create_user(engine, name, PASSWORD, roles or ROLES.get(name, ("viewer",)), actor="test")
    return {"CCM_TOKEN": issue_token(engine, staff), "CCM_PASSWORD": PASSWORD}
