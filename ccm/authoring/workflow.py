"""The authoring workflow the CLI (and later the web UI) calls: save a draft, submit,
approve, reject, retire. Each function takes a session and the acting user, checks
everything itself (states, maker-checker, validation) and writes one audit entry.

    draft --submit--> in_review --approve--> approved --retire--> retired
                        |  reject
                        v
                      draft

An approved version never changes; a change is a new draft. The approver is neither the
author nor the one who submitted the version.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm import outbound
from ccm.authoring.audit import actors, record
from ccm.authoring.problems import Problem, errors
from ccm.authoring.checks import Library, validate
from ccm.models import Template, TemplateVersion, utcnow
from ccm.authoring.store import (BLOCK_KINDS, ImmutableVersionError, effective_versions, get_version, library,
                               referenced_templates, source_hash)

KINDS = ("statement", "bill", "letter", "email_subject", "email_html", "email_text", "sms", "partial", "asset",
         *BLOCK_KINDS)


class WorkflowError(Exception):
    """A workflow step is not allowed; the message says why."""


class MakerChecker(WorkflowError):
    """A maker of a version (its author, an editor, its submitter) tried to approve it."""


class ValidationFailed(WorkflowError):
    def __init__(self, name: str, problems: list[Problem]) -> None:
        self.problems = problems
        found = errors(problems)
        super().__init__(f"{name}: {len(found)} error(s), nothing saved: " + "; ".join(str(p) for p in found[:5]))


@dataclass(frozen=True)
class Saved:
    name: str
    version: int
    state: str
    problems: list[Problem]


def check(session: Session, settings: Mapping[str, Any], version: TemplateVersion) -> list[Problem]:
    template = version.template
    return validate(template.name, template.kind, version.source, version.meta or {}, library(session), settings)


def save_draft(session: Session, settings: Mapping[str, Any], name: str, source: str, user: str, *,
               kind: str | None = None, title: str | None = None, meta: Mapping[str, Any] | None = None,
               version: int | None = None) -> Saved:
    """Validate ``source`` and store it: as a new draft, or into draft ``version``.

    Errors refuse the save (nothing is stored); warnings are returned with the result.
    """
    template = session.scalar(select(Template).where(Template.name == name))
    if template is None:
        if kind not in KINDS:
            raise WorkflowError(f"{name} is a new template: give its kind (--kind), one of: {', '.join(KINDS)}")
        template = Template(name=name, kind=kind, title=title or "")
    target = get_version(session, name, version) if version is not None else None
    if target is not None and target.state != "draft":
        raise ImmutableVersionError(f"{name} v{target.version} is {target.state} and cannot be edited; "
                                    f"save without --version to make a new draft")
    latest = template.versions[-1] if template.versions else None
    version_meta = dict(meta if meta is not None else (latest.meta if latest else {}) or {})
    problems = validate(name, template.kind, source, version_meta, library(session), settings)
    if errors(problems):
        raise ValidationFailed(name, problems)
    digest = source_hash(source)
    if target is None and latest is not None and latest.source_hash == digest and (latest.meta or {}) == version_meta:
        raise WorkflowError(f"{name}: no change, the source is the same as v{latest.version} ({latest.state})")
    if target is not None:
        target.source, target.source_hash, target.meta = source, digest, version_meta
        record(session, user, "edit", name, target.version, source_sha256=digest)
        return Saved(name, target.version, target.state, problems)
    session.add(template)
    created = TemplateVersion(template=template, version=(latest.version + 1) if latest else 1, source=source,
                              source_hash=digest, state="draft", meta=version_meta, author=user)
    session.add(created)
    session.flush()
    record(session, user, "create_draft", name, created.version, source_sha256=digest,
           warnings=len([p for p in problems if p.severity == "warning"]) or None)
    return Saved(name, created.version, created.state, problems)


MAKER_ACTIONS = ("create_draft", "edit", "submit")


def submit(session: Session, settings: Mapping[str, Any], name: str, version: int, user: str) -> list[Problem]:
    target = _in_state(session, name, version, "draft", "submitted for review")
    problems = check(session, settings, target)
    if errors(problems):
        raise ValidationFailed(name, problems)
    target.state = "in_review"
    record(session, user, "submit", name, version)
    return problems


def approve(session: Session, settings: Mapping[str, Any], name: str, version: int, user: str, *,
            effective_from: dt.datetime | None = None, comment: str | None = None) -> TemplateVersion:
    """Approve a version in review; it takes effect at ``effective_from`` (naive UTC; default
    now). The approver's ``comment``, if any, is kept in the history."""
    target = _in_state(session, name, version, "in_review", "approved")
    # Makers: the author and everyone who edited or submitted this version (an edit of
    # someone else's draft makes you a maker too).
    makers = {target.author} | actors(session, name, version, MAKER_ACTIONS)
    if user in makers:
        role = "is its author" if user == target.author else "is an editor or submitter"
        raise MakerChecker(f"{name} v{version}: {user} {role} and cannot approve it (maker-checker); "
                            f"another person must approve")
    now = utcnow()
    if effective_from is not None and effective_from < now - dt.timedelta(minutes=1):
        raise WorkflowError(f"effective-from {effective_from:%Y-%m-%d %H:%M} is in the past; "
                            f"a version cannot take effect retroactively")
    if errors(problems := check(session, settings, target)):
        raise ValidationFailed(name, problems)
    _require_approved_references(session, target)
    target.state, target.approved_by, target.approved_at = "approved", user, now
    target.effective_from = effective_from or now
    record(session, user, "approve", name, version, effective_from=target.effective_from.isoformat(timespec="seconds"),
           comment=(comment or "").strip()[:500] or None)
    outbound.emit(session, "template.approved", {"template": name, "version": version, "approved_by": user})
    return target


def reject(session: Session, name: str, version: int, user: str, reason: str) -> TemplateVersion:
    """Send a version in review back to draft, with the reviewer's reason."""
    if not reason.strip():
        raise WorkflowError("a rejection needs a reason (--reason)")
    target = _in_state(session, name, version, "in_review", "rejected")
    target.state = "draft"
    record(session, user, "reject", name, version, reason=reason.strip()[:500])
    return target


def retire(session: Session, name: str, version: int, user: str) -> TemplateVersion:
    """Take an approved version out of use (runs planned before keep it; later runs do not)."""
    target = _in_state(session, name, version, "approved", "retired")
    target.state = "retired"
    record(session, user, "retire", name, version)
    return target


def _require_approved_references(session: Session, target: TemplateVersion) -> None:
    """A run renders only approved versions: what this version includes must have one."""
    approved = set(session.scalars(
        select(Template.name).join(TemplateVersion).where(TemplateVersion.state == "approved")))
    missing = sorted(set(referenced_templates(target.source)) - approved)
    if missing:
        raise WorkflowError(f"{target.template.name} v{target.version} uses {', '.join(missing)}, which has no approved "
                            f"version yet; approve that first")


def _in_state(session: Session, name: str, version: int, state: str, action: str) -> TemplateVersion:
    target = get_version(session, name, version)
    if target.state != state:
        raise WorkflowError(f"{name} v{version} is {target.state}; only a version that is {state.replace('_', ' ')} "
                            f"can be {action}")
    return target
