"""Decisions in real time: the content one slot of a communication gives one customer now,
from the same decision versions the batch uses, with its trace. Each answer is recorded as
an exposure, so an experiment's report counts who was shown which variant."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ccm.decisions.evaluate import Outcome
from ccm.decisions.service import decide_for_customer
from ccm.models import Customer, utcnow
from ccm.models.feedback import DecisionExposure


@dataclass(frozen=True)
class Decided:
    outcome: Outcome
    values: dict[str, Any]  # what the rules read of the customer (computed fields, balances, ...)


def decide_now(session: Session, communication: str, slot: str, external_id: str, *, via: str,
               today: dt.date | None = None) -> Decided:
    """Decide ``slot`` of ``communication`` for the customer and record the exposure.
    LookupError names what does not exist (communication, slot or customer)."""
    decided = decide_for_customer(session, communication, external_id, today)
    if slot not in decided.outcomes:
        known = ", ".join(sorted(decided.outcomes)) or "none"
        raise LookupError(f"{communication} has no decision for slot {slot} (slots: {known})")
    outcome = decided.outcomes[slot]
    customer_id = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
    session.add(DecisionExposure(customer_id=customer_id, communication=outcome.decision.split("/", 1)[0], slot=slot,
                                 version=outcome.version, rule=outcome.rule[:100], content=outcome.content,
                                 experiment=outcome.experiment, variant=outcome.variant, via=via[:100], at=utcnow()))
    return Decided(outcome, decided.values)
