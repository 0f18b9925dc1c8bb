"""Who may receive a message of a communication, and on which channel: one decision for
planned statements, campaigns, date reminders and triggered sends (and the reachability a
fallback channel needs), made here only, in this order:

1. an erased customer receives nothing;
2. marketing only: the frequency cap across all marketing, then the topics and frequency the
   customer chose in the preference centre;
3. the communication's channel policy (conditions in the rule language, segments included),
   the first channel that can reach the customer: an address, consent for the purpose
   (marketing or service), not on the suppression list.

A customer who cannot be reached gets a suppressed message with the reason. The same
customer gets the same answer whichever way the message is made.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from ccm.communications import is_marketing
from ccm.wiring import Engine
from ccm.models import Communication, Customer, utcnow
from ccm.rules import load_values
from ccm.runs.caps import frequency_problem, last_marketing, over_cap
from ccm.runs.gate import consent_purpose
from ccm.runs.policy import ADDRESSED, ChannelPolicy, Choice, PolicyError, suppressions_for, topic_problem
from ccm.segments import segment_clause, segment_names

ERASED = Choice(None, "customer erased", suppressed=True)


class Eligibility:
    """The decision for one communication; ``choose`` answers for a batch of customers
    with a few queries (their rule values, suppressions and recent marketing)."""

    def __init__(self, engine: Engine, session: Session, communication: Communication, *, run_id: int | None = None) -> None:
        self.engine, self.session, self.run_id = engine, session, run_id
        try:
            self.policy = ChannelPolicy(communication.config.get("channel_policy"), segments=set(segment_names(session)))
        except PolicyError as exc:
            raise PolicyError(f"{communication.name}: {exc}") from None
        unset = [step.channel for step in self.policy.steps if not engine.settings["channels"].get(step.channel)]
        if unset:
            raise PolicyError(f"{communication.name}: its channel policy names {unset[0]}, but [channels] {unset[0]} is not set")
        self.marketing = is_marketing(communication)
        self.topic = communication.config.get("topic")
        self.consent = consent_purpose(communication)
        self.suppressed: dict[tuple[str, str], str] = {}  # of the last batch: the SMS reminder of a statement reads it too

    def choose(self, customers: Sequence[Customer], now: dt.datetime | None = None) -> dict[int, Choice]:
        ids = [customer.id for customer in customers]
        values = self._rule_values(ids)
        self.suppressed = suppressions_for(self.session, customers, ADDRESSED)
        last_sent, capped, cap_reason = {}, set(), ""
        if self.marketing:
            last_sent = last_marketing(self.session, ids, except_run=self.run_id)
            cap, capped = over_cap(self.engine.settings, self.session, ids, except_run=self.run_id)
            cap_reason = cap.reason if cap else ""
        now = now or utcnow()
        chosen = {}
        for customer in customers:
            if customer.erased_at is not None:
                chosen[customer.id] = ERASED
            elif customer.id in capped:
                chosen[customer.id] = Choice(None, cap_reason, suppressed=True)
            elif self.marketing and (problem := topic_problem(customer, self.topic) or frequency_problem(customer, last_sent.get(customer.id), now)):
                chosen[customer.id] = Choice(None, problem, suppressed=True)
            else:
                chosen[customer.id] = self.policy.choose(customer, values.get(customer.id, {}), self.suppressed, self.consent)
        return chosen

    def _rule_values(self, ids: list[int]) -> dict[int, dict]:
        """What the policy's conditions read, per customer, in one pass of SQL."""
        if not self.policy.rules:
            return {}
        values: dict[int, dict] = {}
        clause = segment_clause(self.session)
        unique = sorted(set(ids))
        for start in range(0, len(unique), 5000):
            chunk = unique[start:start + 5000]
            for row in load_values(self.session, self.policy.rules, where=Customer.id.in_(chunk), segment_clause=clause):
                values[row["id"]] = row
        return values
