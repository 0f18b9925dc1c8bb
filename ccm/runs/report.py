"""What a run did: counts per state and channel, and the reconciliation.

Records in (the feed's statements for the cycle) must equal the statements sent +
suppressed + failed (dead: given up) + retrying (failed, to be retried) + still open
(pending or claimed). The run is reconciled only when that equation balances and no
message of the run (SMS reminders included) is retrying or open.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ccm.models import Communication, Message, Run

OPEN_STATES = ("pending", "claimed")
DEFERRED_STATES = ("deferred",)  # waiting for the end of the customer's quiet hours
RETRY_STATES = ("failed",)  # a failed message is retried after its backoff; dead ones are not


@dataclass
class RunReport:
    run_id: int
    communication: str
    cycle: str
    state: str
    records_in: int
    statements: dict[str, int]  # state -> count, statement messages only
    by_channel: dict[str, dict[str, int]]  # channel -> state -> count, all messages
    suppressed_reasons: dict[str, int]
    failure_reasons: dict[str, int]
    error: str | None = None  # why the run stopped or waits (paused, failed)
    contents: dict[str, dict[str, int]] = field(default_factory=dict)  # slot -> content decided -> statements
    costs: dict[str, str] = field(default_factory=dict)  # channel -> cost of what was sent, and "total"
    currency: str = ""
    print_batches: list[str] = field(default_factory=list)  # batch folders holding a print stream and a manifest
    outputs: dict[str, str] = field(default_factory=dict)  # channel -> where it went (masked URL)

    @property
    def open(self) -> int:
        """Statements not finished yet: pending, claimed, or waiting for a retry."""
        return sum(self.statements.get(s, 0) for s in OPEN_STATES + RETRY_STATES + DEFERRED_STATES)

    @property
    def unfinished(self) -> int:
        """Messages of every kind (SMS reminders too) still open or waiting for a retry."""
        waiting = OPEN_STATES + RETRY_STATES + DEFERRED_STATES
        return sum(states.get(s, 0) for states in self.by_channel.values() for s in waiting)

    @property
    def balanced(self) -> bool:
        return self.records_in == sum(self.statements.values())

    @property
    def complete(self) -> bool:
        return self.balanced and self.unfinished == 0

    def reconciliation(self) -> str:
        s = self.statements
        terms = f"sent {s.get('sent', 0)} + suppressed {s.get('suppressed', 0)} + failed {s.get('dead', 0)}"
        if s.get("failed"):
            terms += f" + retrying {s['failed']}"
        if s.get("deferred"):
            terms += f" + deferred {s['deferred']}"
        still_open = sum(s.get(state, 0) for state in OPEN_STATES)
        if still_open:
            terms += f" + still open {still_open}"
        if not self.balanced:
            verdict = "NOT BALANCED"
        elif self.complete:
            verdict = "reconciled"
        else:
            verdict = f"open ({self.unfinished} messages to finish)"
        return f"records in {self.records_in} = {terms}: {verdict}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(balanced=self.balanced, complete=self.complete, unfinished=self.unfinished, reconciliation=self.reconciliation())
        return data


def sent_costs(by_channel: dict[str, dict[str, int]], unit_costs: dict[str, str]) -> dict[str, str]:
    """Cost per channel of the messages sent, and the total (decimal strings)."""
    costs = {
        channel: Decimal(unit_costs[channel]) * states.get("sent", 0)
        for channel, states in by_channel.items()
        if channel in unit_costs
    }
    costs["total"] = sum(costs.values(), Decimal("0"))
    return {channel: str(amount.quantize(Decimal("0.01"))) for channel, amount in costs.items()}


def run_report(
    session: Session, run_id: int, outputs: dict[str, str] | None = None, unit_costs: dict[str, str] | None = None
) -> RunReport:
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"no such run: {run_id}")
    communication = session.get(Communication, run.communication_id)
    by_channel: dict[str, dict[str, int]] = {}
    statements: dict[str, int] = {}
    rows = session.execute(
        select(Message.channel, Message.purpose, Message.state, func.count())
        .where(Message.run_id == run_id)
        .group_by(Message.channel, Message.purpose, Message.state)
    )
    for channel, purpose, state, count in rows:
        by_channel.setdefault(channel, {}).setdefault(state, 0)
        by_channel[channel][state] += count
        if purpose == "statement":
            statements[state] = statements.get(state, 0) + count
    unit_costs = dict(unit_costs or {})
    currency = unit_costs.pop("currency", "")
    return RunReport(
        costs=sent_costs(by_channel, unit_costs),
        error=run.error,
        contents=_contents(session, run_id),
        currency=currency,
        run_id=run.id,
        communication=communication.name,
        cycle=run.cycle,
        state=run.state,
        records_in=run.records_in,
        statements=statements,
        by_channel=by_channel,
        suppressed_reasons=_reasons(session, run_id, ("suppressed",)),
        failure_reasons=_reasons(session, run_id, ("failed", "dead")),
        print_batches=list(
            session.scalars(
                select(Message.batch_id)
                .where(Message.run_id == run_id, Message.channel == "print", Message.batch_id.is_not(None))
                .distinct()
                .order_by(Message.batch_id)
            )
        ),
        outputs=outputs or {},
    )


def _contents(session: Session, run_id: int) -> dict[str, dict[str, int]]:
    """How many statements got which content in each slot (from the messages' decision traces)."""
    counts: dict[str, dict[str, int]] = {}
    traces = session.scalars(
        select(Message.decisions).where(Message.run_id == run_id, Message.purpose == "statement").execution_options(yield_per=5000)
    )
    for trace in traces:
        for slot, decided in (trace or {}).items():
            content = (decided or {}).get("content") or "(empty)"
            variant = (decided or {}).get("variant")
            key = f"{content} [{variant}]" if variant else content
            counts.setdefault(slot, {}).setdefault(key, 0)
            counts[slot][key] += 1
    return {slot: dict(sorted(c.items(), key=lambda item: -item[1])) for slot, c in counts.items()}


def _reasons(session: Session, run_id: int, states: tuple[str, ...]) -> dict[str, int]:
    rows = session.execute(
        select(Message.reason, func.count())
        .where(Message.run_id == run_id, Message.state.in_(states))
        .group_by(Message.reason)
        .order_by(func.count().desc())
    )
    return {reason or "unknown": count for reason, count in rows}


def list_runs(session: Session) -> list[tuple[Run, str]]:
    rows = session.execute(select(Run, Communication.name).join(Communication).order_by(Run.id.desc()))
    return [(run, name) for run, name in rows]
