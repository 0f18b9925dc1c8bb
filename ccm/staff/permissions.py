"""Permissions are ``area:action`` strings; a role is a set of them, stored as data
(``roles.permissions``). Every console route and every command that acts for someone names
the one it needs. ``*`` grants everything, ``area:*`` every action of an area.

The catalogue below is what the engine checks; the built-in roles are seeded from it by
``ccm db upgrade`` (and ``ccm users roles --reset``), and an admin may change them.
"""
from __future__ import annotations

from typing import Iterable


def N_(text: str) -> str:
    """Marks a text for the console's catalogues (``scripts/translations.sh``); the console
    shows it translated, the CLI as it is."""
    return text


PERMISSIONS: dict[str, str] = {
    "runs:view": N_("see runs, their progress, reconciliation and reports"),
    "runs:start": N_("import a billing feed and start a statement or bill cycle"),
    "runs:control": N_("pause, resume and cancel runs; retry failed messages now"),
    "print:download": N_("download print batches, streams and manifests"),
    "archive:view": N_("search the archive of sent statements"),
    "archive:reprint": N_("reprint an archived statement"),
    "schedules:view": N_("see schedules, their calendar and history"),
    "schedules:edit": N_("create, change, pause and remove schedules"),
    "customers:view": N_("find customers and see their profile and history"),
    "customers:edit": N_("change a customer's consents and preferences on their behalf"),
    "customers:resend": N_("send a customer's statement again"),
    "customers:erase": N_("erase a customer's personal data"),
    "tasks:view": N_("see the follow-up queue"),
    "tasks:work": N_("assign, comment on and close follow-up tasks"),
    "templates:view": N_("see templates, versions and previews"),
    "templates:edit": N_("create and change drafts of templates and content blocks, send proofs"),
    "templates:submit": N_("submit a draft for approval"),
    "templates:approve": N_("approve, reject and retire template versions"),
    "segments:view": N_("see segments and their counts"),
    "segments:edit": N_("create and change segments"),
    "decisions:view": N_("see decisions and experiments"),
    "decisions:edit": N_("change decisions and experiments"),
    "campaigns:view": N_("see campaigns and their reports"),
    "campaigns:edit": N_("create and change campaigns"),
    "campaigns:send": N_("send a campaign or the winner of a test"),
    "reports:view": N_("see reports"),
    "audit:view": N_("see the audit log"),
    "users:manage": N_("create users, change roles, disable users"),
    "events:record": N_("send events to the API: conversions, payments and events that trigger messages"),
    "webhooks:manage": N_("subscribe other systems to the engine's events (outbound webhooks) and see their deliveries"),
    "inbox:serve": N_("serve customers' inboxes on the website: list, read and archive their messages"),
}

VIEWING = [name for name in PERMISSIONS if name.endswith(":view")]

BUILT_IN_ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": (N_("everything, including users and roles"), ["*"]),
    "marketer": (N_("authors templates, segments, decisions and campaigns"), [
        "templates:view", "templates:edit", "templates:submit", "segments:view", "segments:edit", "decisions:view",
        "decisions:edit", "campaigns:view", "campaigns:edit", "reports:view", "customers:view", "runs:view",
        "schedules:view"]),
    "approver": (N_("approves what marketers write and sends campaigns"), [
        "templates:view", "templates:approve", "campaigns:view", "campaigns:send", "segments:view", "decisions:view",
        "reports:view", "runs:view"]),
    "billing": (N_("runs statement and bill cycles, reconciles and reprints"), [
        "runs:view", "runs:start", "runs:control", "print:download", "archive:view", "archive:reprint", "reports:view",
        "customers:view", "schedules:view"]),
    "scheduler": (N_("sets up recurring and triggered sends"), [
        "schedules:view", "schedules:edit", "runs:view", "runs:control", "reports:view", "campaigns:view"]),
    "service": (N_("customer service: profiles, consents, resends, erasure, follow-ups"), [
        "customers:view", "customers:edit", "customers:resend", "customers:erase", "tasks:view", "tasks:work",
        "archive:view", "runs:view"]),
    "viewer": (N_("sees everything, changes nothing"), [*VIEWING, "reports:view"]),
    "website": (N_("the company's website or app: customers' inboxes and real-time decisions"), ["inbox:serve", "decisions:view"]),
}


SYSTEM_ROLES = ("website",)  # held by other systems' API accounts, not by people at a desk


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
