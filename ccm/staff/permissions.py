"""Permissions are ``area:action`` strings; a role is a set of them, stored as data
(``roles.permissions``). Every console route and every command that acts for someone names
the one it needs. ``*`` grants everything, ``area:*`` every action of an area.

The catalogue below is what the engine checks; the built-in roles are seeded from it by
``ccm db upgrade`` (and ``ccm users roles --reset``), and an admin may change them.
"""
from __future__ import annotations

from typing import Iterable

PERMISSIONS: dict[str, str] = {
    "runs:view": "see runs, their progress, reconciliation and reports",
    "runs:start": "import a billing feed and start a statement or bill cycle",
    "runs:control": "pause, resume and cancel runs; retry failed messages now",
    "print:download": "download print batches, streams and manifests",
    "archive:view": "search the archive of sent statements",
    "archive:reprint": "reprint an archived statement",
    "schedules:view": "see schedules, their calendar and history",
    "schedules:edit": "create, change, pause and remove schedules",
    "customers:view": "find customers and see their profile and history",
    "customers:edit": "change a customer's consents and preferences on their behalf",
    "customers:resend": "send a customer's statement again",
    "customers:erase": "erase a customer's personal data",
    "tasks:view": "see the follow-up queue",
    "tasks:work": "assign, comment on and close follow-up tasks",
    "templates:view": "see templates, versions and previews",
    "templates:edit": "create and change drafts of templates and content blocks, send proofs",
    "templates:submit": "submit a draft for approval",
    "templates:approve": "approve, reject and retire template versions",
    "segments:view": "see segments and their counts",
    "segments:edit": "create and change segments",
    "decisions:view": "see decisions and experiments",
    "decisions:edit": "change decisions and experiments",
    "campaigns:view": "see campaigns and their reports",
    "campaigns:edit": "create and change campaigns",
    "campaigns:send": "send a campaign or the winner of a test",
    "reports:view": "see reports",
    "audit:view": "see the audit log",
    "users:manage": "create users, change roles, disable users",
}

VIEWING = [name for name in PERMISSIONS if name.endswith(":view")]

BUILT_IN_ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("everything, including users and roles", ["*"]),
    "marketer": ("authors templates, segments, decisions and campaigns", [
        "templates:view", "templates:edit", "templates:submit", "segments:view", "segments:edit", "decisions:view",
        "decisions:edit", "campaigns:view", "campaigns:edit", "reports:view", "customers:view", "runs:view",
        "schedules:view"]),
    "approver": ("approves what marketers write and sends campaigns", [
        "templates:view", "templates:approve", "campaigns:view", "campaigns:send", "segments:view", "decisions:view",
        "reports:view", "runs:view"]),
    "billing": ("runs statement and bill cycles, reconciles and reprints", [
        "runs:view", "runs:start", "runs:control", "print:download", "archive:view", "archive:reprint", "reports:view",
        "customers:view", "schedules:view"]),
    "scheduler": ("sets up recurring and triggered sends", [
        "schedules:view", "schedules:edit", "runs:view", "runs:control", "reports:view", "campaigns:view"]),
    "service": ("customer service: profiles, consents, resends, erasure, follow-ups", [
        "customers:view", "customers:edit", "customers:resend", "customers:erase", "tasks:view", "tasks:work",
        "archive:view", "runs:view"]),
    "viewer": ("sees everything, changes nothing", [*VIEWING, "reports:view"]),
}


class UnknownPermission(ValueError):
    pass


def grants(permissions: Iterable[str], needed: str) -> bool:
    """Whether a set of permission strings includes ``needed`` (``*`` and ``area:*`` count)."""
    held = set(permissions)
    area = needed.split(":", 1)[0]
    return "*" in held or needed in held or f"{area}:*" in held


def check_permission(name: str) -> str:
    """``name`` if it is a permission the engine knows (or a wildcard of one), else an error
    that names the nearest."""
    if name == "*" or name in PERMISSIONS or (name.endswith(":*") and any(p.startswith(name[:-1]) for p in PERMISSIONS)):
        return name
    import difflib

    near = difflib.get_close_matches(name, PERMISSIONS, n=1)
    raise UnknownPermission(f"no such permission: {name}" + (f" (did you mean {near[0]}?)" if near else ""))
