"""An experiment's winner for the rest of the audience: the messages of a follow-up run get
the winning variant's content instead of their own draw, and their trace says so (the
experiment and the variant stay on the trace, so reports count them with the winner). The
hold-out keeps its draw: it goes on measuring what doing nothing earns."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ccm.decisions.service import compiled_decisions
from ccm.decisions.spec import Experiment
from ccm.models import Message, Run

HOLDOUT = "holdout"


def winning_content(session: Session, communication_name: str, experiment: str, variant: str) -> str | None:
    """The content the current decisions give ``variant`` of ``experiment``; LookupError if
    no current decision of the communication has that experiment and variant."""
    from ccm.communications import get_communication

    communication = get_communication(session, communication_name)
    for decision in compiled_decisions(session, communication).values():
        for found in decision.spec.experiments():
            if found.name == experiment:
                return _variant(found, variant)
    raise LookupError(f"{communication.name} has no experiment {experiment}")


def experiment_names(session: Session, communication_name: str) -> list[str]:
    """The experiments of the communication's current decisions, by name."""
    from ccm.communications import get_communication

    communication = get_communication(session, communication_name)
    return sorted({found.name for decision in compiled_decisions(session, communication).values()
                   for found in decision.spec.experiments()})


def _variant(experiment: Experiment, name: str) -> str | None:
    for variant in experiment.variants:
        if variant.name == name:
            return variant.content
    raise LookupError(f"experiment {experiment.name} has no variant {name}")


def apply_winner(session: Session, run_id: int, experiment: str, variant: str) -> int:
    """Give the run's open messages drawn into ``experiment`` (hold-out aside) the winning
    ``variant``; returns how many were changed."""
    run = session.get(Run, run_id)
    content = winning_content(session, run.communication.name, experiment, variant)
    changed: list[dict[str, Any]] = []
    rows = session.execute(select(Message.id, Message.decisions).where(
        Message.run_id == run_id, Message.state.in_(("pending", "failed"))))
    for message_id, trace in rows:
        decided = dict(trace or {})
        for slot, outcome in decided.items():
            drawn = bool(outcome) and outcome.get("experiment") == experiment and outcome.get("variant") != HOLDOUT
            if drawn and not outcome.get("winner"):
                decided[slot] = {**outcome, "variant": variant, "content": content, "winner": True,
                                 "why": f"{outcome.get('why', '')}; the winner {variant!r} sent to the rest"}
        if decided != (trace or {}):
            changed.append({"id": message_id, "decisions": decided})
    if changed:
        session.execute(update(Message), changed)
    return len(changed)
