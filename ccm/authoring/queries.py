"""Read-only views of the store for reports: list, show, diff, history."""
from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.authoring.audit import as_json, history
from ccm.models import Template, TemplateVersion
from ccm.authoring.store import effective_versions, get_template, get_version


def list_templates(session: Session) -> list[dict[str, Any]]:
    effective = effective_versions(session)
    rows = []
    for template in session.scalars(select(Template).order_by(Template.name)):
        latest = template.versions[-1] if template.versions else None
        in_effect = next((v.version for v in template.versions if v.id == effective.get(template.name)), None)
        rows.append({"name": template.name, "kind": template.kind, "title": template.title,
                     "versions": len(template.versions), "latest": latest.version if latest else None,
                     "latest_state": latest.state if latest else None, "in_effect": in_effect})
    return rows


def version_json(version: TemplateVersion, *, with_source: bool = True) -> dict[str, Any]:
    data = {
        "name": version.template.name, "kind": version.template.kind, "version": version.version, "state": version.state,
        "author": version.author, "approved_by": version.approved_by,
        "approved_at": _iso(version.approved_at), "effective_from": _iso(version.effective_from),
        "created_at": _iso(version.created_at), "source_sha256": version.source_hash, "meta": version.meta,
    }
    if with_source:
        data["source"] = version.source
    return data


def show(session: Session, name: str, version: int | None = None) -> dict[str, Any]:
    template = get_template(session, name)
    chosen = get_version(session, name, version)
    data = version_json(chosen)
    data["title"] = template.title
    data["all_versions"] = [version_json(v, with_source=False) for v in template.versions]
    return data


def diff(session: Session, name: str, first: int, second: int) -> str:
    a, b = get_version(session, name, first), get_version(session, name, second)
    lines = difflib.unified_diff(a.source.splitlines(keepends=True), b.source.splitlines(keepends=True),
                                 fromfile=f"{name} v{first} ({a.state})", tofile=f"{name} v{second} ({b.state})")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def template_history(session: Session, name: str) -> list[dict[str, Any]]:
    get_template(session, name)
    return [as_json(entry) for entry in history(session, name)]


def _iso(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None
