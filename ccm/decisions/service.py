"""Decisions in the database: versions, the built-in ones, and deciding for one customer,
for a whole audience (dry run) and for the messages of a run (the recorded trace)."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ccm.communications import ensure_built_in, get_communication as _get_communication
from ccm.decisions.evaluate import CompiledDecision, Outcome
from ccm.models.decisions import Decision, DecisionVersion
from ccm.decisions.spec import parse_spec, spec_to_data
from ccm.models import Communication, Customer, FeedRecord, Message, Template, utcnow
from ccm.rules import load_values
from ccm.segments import segment_clause, segment_names
from ccm.authoring import read_manifest


def get_communication(session: Session, name: str) -> Communication:
    ensure_built_in(session)  # the built-in communications exist before their first run
    return _get_communication(session, name)


def known_contents(session: Session, templates_dir: Path | None) -> set[str]:
    names = set(session.scalars(select(Template.name)))
    if templates_dir is not None:
        names.update(entry.name for entry in read_manifest(templates_dir))
    return names


def save_decision(
    session: Session, communication: str, slot: str, data: Any, *, templates_dir: Path | None = None, author: str = "cli",
    check_contents: bool = True,
) -> tuple[Decision, str]:
    """Check and store a decision; a new version when it differs from the current one."""
    comm = get_communication(session, communication)
    contents = known_contents(session, templates_dir) if check_contents else None
    spec = parse_spec(data, segments=segment_names(session), contents=contents)
    canonical = spec_to_data(spec)
    decision = session.scalar(select(Decision).where(Decision.communication == comm.name, Decision.slot == slot))
    now = utcnow()
    if decision is None:
        decision = Decision(communication=comm.name, slot=slot, version=1, created_at=now, updated_at=now)
        session.add(decision)
        session.flush()
        session.add(DecisionVersion(decision_id=decision.id, version=1, spec=canonical, author=author, created_at=now))
        return decision, "created"
    if current_version(session, decision).spec == canonical:
        return decision, "unchanged"
    decision.version += 1
    decision.updated_at = now
    session.add(DecisionVersion(decision_id=decision.id, version=decision.version, spec=canonical, author=author, created_at=now))
    session.flush()
    return decision, "new version"


def current_version(session: Session, decision: Decision) -> DecisionVersion:
    return session.scalars(
        select(DecisionVersion).where(DecisionVersion.decision_id == decision.id, DecisionVersion.version == decision.version)
    ).one()


def ensure_built_in_decisions(session: Session, communication: Communication) -> None:
    """Store the decisions a built-in communication ships with (``config["decisions"]``) as
    version 1 where none exists; never overwrite one a marketer changed."""
    for slot, data in communication.config.get("decisions", {}).items():
        exists = session.scalar(select(Decision.id).where(Decision.communication == communication.name, Decision.slot == slot))
        if exists is None:
            save_decision(session, communication.name, slot, data, author="built-in", check_contents=False)


def compiled_decisions(session: Session, communication: Communication, today: dt.date | None = None) -> dict[str, CompiledDecision]:
    """slot -> the current version of its decision, compiled."""
    ensure_built_in_decisions(session, communication)
    compiled = {}
    names = segment_names(session)
    for decision in session.scalars(select(Decision).where(Decision.communication == communication.name).order_by(Decision.slot)):
        version = current_version(session, decision)
        spec = parse_spec(version.spec, segments=names)
        compiled[decision.slot] = CompiledDecision(f"{communication.name}/{decision.slot}", decision.version, spec, today)
    return compiled


def _rules(decisions: Iterable[CompiledDecision]):
    return [rule for decision in decisions for rule in decision.parsed_rules]


@dataclass
class CustomerDecision:
    external_id: str
    outcomes: dict[str, Outcome]
    values: dict[str, Any]


def decide_for_customer(session: Session, communication: str, external_id: str, today: dt.date | None = None) -> CustomerDecision:
    comm = get_communication(session, communication)
    decisions = compiled_decisions(session, comm, today)
    customer_id = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
    if customer_id is None:
        raise LookupError(f"no such customer: {external_id}")
    values = next(load_values(session, _rules(decisions.values()), where=Customer.id == customer_id, segment_clause=segment_clause(session)))
    outcomes = {slot: decision.decide(values, external_id) for slot, decision in decisions.items()}
    shown = {k: v for k, v in values.items() if k not in ("id", "attributes") and not k.startswith("segment:")}
    return CustomerDecision(external_id, outcomes, shown)


@dataclass
class DryRun:
    audience: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    by_rule: dict[str, Counter] = field(default_factory=dict)  # slot -> rule -> count
    by_variant: dict[str, Counter] = field(default_factory=dict)  # slot -> "rule / experiment / variant" -> count
    by_content: dict[str, Counter] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "audience": self.audience,
            "slots": {
                slot: {"version": self.versions[slot], "rules": dict(self.by_rule[slot]), "variants": dict(self.by_variant[slot]),
                       "contents": {str(k): v for k, v in self.by_content[slot].items()}}
                for slot in self.by_rule
            },
        }


def dry_run(session: Session, communication: str, *, cycle: str | None = None, segment: str | None = None,
            today: dt.date | None = None, proposed: dict[str, Any] | None = None) -> DryRun:
    """Counts per rule and variant over the audience: customers with a statement in ``cycle``,
    members of ``segment``, or everyone. ``proposed`` (slot -> decision data) counts with a
    decision as it would be saved (version 0: not saved). Nothing is written."""
    comm = get_communication(session, communication)
    decisions = compiled_decisions(session, comm, today)
    names = segment_names(session)
    for slot, data in (proposed or {}).items():
        spec = parse_spec(data, segments=names, contents=known_contents(session, None))
        decisions[slot] = CompiledDecision(f"{comm.name}/{slot}", 0, spec, today)
    where = None
    clause = segment_clause(session)
    if cycle:
        where = Customer.id.in_(select(FeedRecord.customer_id).where(FeedRecord.period == cycle))
    if segment:
        member = clause(segment)
        where = member if where is None else where & member
    result = DryRun(versions={slot: d.version for slot, d in decisions.items()})
    for slot in decisions:
        result.by_rule[slot], result.by_variant[slot], result.by_content[slot] = Counter(), Counter(), Counter()
    for values in load_values(session, _rules(decisions.values()), where=where, segment_clause=clause):  # streamed
        result.audience += 1
        for slot, decision in decisions.items():
            outcome = decision.decide(values, values["external_id"])
            result.by_rule[slot][outcome.rule] += 1
            result.by_content[slot][outcome.content] += 1
            if outcome.experiment:
                result.by_variant[slot][f"{outcome.rule} / {outcome.experiment} / {outcome.variant}"] += 1
    return result


SLOT_CHANNELS = ("print", "email", "inbox", "webhook")  # the channels that render the document or the e-mail with its slots


def decide_run(session: Session, run_id: int, today: dt.date | None = None) -> int:
    """Decide every slot for the run's messages that have no decision yet and record the
    trace (decision version, rule, why, content, experiment and variant) on the message.
    Messages decided before keep theirs, so a resumed run sends what it decided."""
    from ccm.models import Run

    run = session.get(Run, run_id)
    decisions = compiled_decisions(session, run.communication, today)
    if not decisions:
        return 0
    # A campaign decides for every channel: the experiment's variant (and hold-out) is the
    # customer's, whichever channel reaches them, so reports compare like with like.
    channels = SLOT_CHANNELS + ("sms",) if run.communication.kind == "marketing" else SLOT_CHANNELS
    open_messages = [
        (message_id, customer_id)
        for message_id, customer_id, traced in session.execute(
            select(Message.id, Message.customer_id, Message.decisions).where(
                Message.run_id == run_id, Message.state.in_(("pending", "failed", "claimed")), Message.channel.in_(channels)
            )
        )
        if not traced
    ]
    if not open_messages:
        return 0
    messages_of: dict[int, list[int]] = {}
    for message_id, customer_id in open_messages:
        messages_of.setdefault(customer_id, []).append(message_id)
    where = Customer.id.in_(select(Message.customer_id).where(Message.run_id == run_id))
    batch: list[dict[str, Any]] = []
    for values in load_values(session, _rules(decisions.values()), where=where, segment_clause=segment_clause(session)):
        for message_id in messages_of.get(values["id"], ()):
            batch.append({"id": message_id, "decisions": {slot: d.decide(values, values["external_id"]).trace() for slot, d in decisions.items()}})
        if len(batch) >= 1000:  # written as it goes, not held for the whole run
            session.execute(update(Message), batch)
            batch = []
    if batch:
        session.execute(update(Message), batch)
    return len(open_messages)


def describe_decision(session: Session, communication: str) -> list[dict[str, Any]]:
    comm = get_communication(session, communication)
    ensure_built_in_decisions(session, comm)
    shown = []
    for decision in session.scalars(select(Decision).where(Decision.communication == comm.name).order_by(Decision.slot)):
        shown.append({
            "slot": decision.slot, "version": decision.version,
            "versions": [{"version": v.version, "author": v.author, "created_at": v.created_at.isoformat(timespec="seconds") + "Z", "spec": v.spec}
                         for v in decision.versions],
        })
    return shown


def decision_overview(session: Session) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Every communication (name, title) with the decisions of its slots (as ``describe_decision``)."""
    ensure_built_in(session)
    return [(comm.name, comm.title, describe_decision(session, comm.name))
            for comm in session.scalars(select(Communication).order_by(Communication.name))]


__all__ = [
    "CustomerDecision", "DryRun", "decision_overview", "compiled_decisions", "current_version", "decide_for_customer",
    "decide_run", "describe_decision", "dry_run", "ensure_built_in_decisions", "save_decision",
]
