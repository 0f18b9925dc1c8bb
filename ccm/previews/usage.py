"""Where a content block (or a partial) is used: the templates that include it, the
communications that name it for a slot, the decisions that can pick it."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.authoring.store import library, referenced_templates
from ccm.communications import ensure_built_in
from ccm.decisions import compiled_decisions
from ccm.models import Communication


def where_used(session: Session, name: str) -> dict[str, list[Any]]:
    """``templates``: names of the templates whose live version includes, imports or extends
    ``name``; ``communications``: (communication, slot, channel) naming it as a slot's block;
    ``decisions``: (communication, slot) whose current decision can give it."""
    live = library(session)
    templates = sorted(other for other, source in live.sources.items() if other != name and name in referenced_templates(source))
    ensure_built_in(session)
    slots, decisions = [], []
    for communication in session.scalars(select(Communication).order_by(Communication.name)):
        for slot, per_channel in sorted(communication.config.get("slots", {}).items()):
            slots += [(communication.name, slot, channel) for channel, block in sorted(per_channel.items()) if block == name]
        for slot, decision in sorted(compiled_decisions(session, communication).items()):
            if name in decision.spec.contents():
                decisions.append((communication.name, slot))
    return {"templates": templates, "communications": slots, "decisions": decisions}


def where_used_all(session: Session, names: list[str]) -> dict[str, dict[str, list[Any]]]:
    """``where_used`` of each of ``names``."""
    return {name: where_used(session, name) for name in names}
