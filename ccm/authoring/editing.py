"""The checks of an unsaved source, as a save would run them (for an editor that checks as
the author types): every problem with its line and column, nothing stored."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ccm.authoring.checks import validate
from ccm.authoring.problems import Problem
from ccm.authoring.store import get_template, library


def check_source(session: Session, settings: Mapping[str, Any], name: str, source: str, *,
                 kind: str | None = None) -> list[Problem]:
    """The problems a save of ``source`` as a new draft of template ``name`` would find (its
    kind and meta as its newest version has them); for a template not made yet, as its first
    draft of ``kind`` (LookupError without one)."""
    try:
        template = get_template(session, name)
    except LookupError:
        if kind is None:
            raise
        return validate(name, kind, source, {}, library(session), settings)
    latest = template.versions[-1] if template.versions else None
    meta = dict(latest.meta or {}) if latest else {}
    return validate(name, template.kind, source, meta, library(session), settings)
