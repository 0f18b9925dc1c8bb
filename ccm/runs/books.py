"""What a run did: counts per state and channel, and the reconciliation.

Two equations, both checked. Every record in (the feed's statements of the cycle, a
campaign's audience, a day's triggering events) became exactly one planned message::

    records in = planned

and every planned message is in a state the engine writes, so nothing was lost on the way::

    planned = sent + suppressed + dead + failed (retrying) + deferred + open (pending, claimed)

Only messages of the primary purpose count here (``policy.PRIMARY_PURPOSES``); an SMS payment
reminder rides along with its statement. The run is *reconciled* when both balance, no
message of the run (reminders included) is in a state the engine never writes or marked sent
without a send time, and nothing is left to do. Names are the states' own everywhere: *dead*
is given up, *failed* waits for a retry.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ccm.models import MESSAGE_STATES, Communication, Message, Run
from ccm.runs.outbox import observed_state
from ccm.runs.policy import PRIMARY_PURPOSES

OPEN_STATES = ("pending", "claimed")
DEFERRED_STATES = ("deferred",)  # waiting for a later time: quiet hours, a daily limit, a local-time release
RETRY_STATES = ("failed",)  # retried after its backoff; dead ones are not
FINAL_STATES = ("sent", "suppressed", "dead")


@dataclass(frozen=True)
class Books:
    """The figures the reconciliation checks, read in a few aggregate queries (cheap
    enough for the end of every run, whatever its size)."""

    records_in: int
    statements: dict[str, int]  # state -> primary messages
    strays: dict[str, int]  # state the engine never writes -> messages of any purpose
    sent_untimed: int  # messages "sent" without a send time: no worker recorded them

    @property
    def planned(self) -> int:
        return sum(self.statements.values())

    def problems(self) -> list[str]:
        """What does not add up, in words an operator can act on; empty when it balances."""
        found = []
        if self.planned < self.records_in:
            missing = self.records_in - self.planned
            found.append(f"records in {self.records_in} but planned {self.planned}: {missing} "
                         f"{'record has' if missing == 1 else 'records have'} no message (plan the cycle again to add them)")
        elif self.planned > self.records_in:
            found.append(f"records in {self.records_in} but planned {self.planned}: {self.planned - self.records_in} more messages than records")
        for state, count in sorted(self.strays.items()):
            found.append(f"{count} {'message is' if count == 1 else 'messages are'} in state {state!r}, which the engine never writes")
        if self.sent_untimed:
            found.append(f"{self.sent_untimed} {'message is' if self.sent_untimed == 1 else 'messages are'} marked sent without a send time")
        return found


def read_books(session: Session, run: Run) -> Books:
    statements: dict[str, int] = {}
    strays: dict[str, int] = {}
    rows = session.execute(
        select(Message.purpose, Message.state, func.count()).where(Message.run_id == run.id).group_by(Message.purpose, Message.state)
    )
    for purpose, state, count in rows:
        if purpose in PRIMARY_PURPOSES:
            statements[state] = statements.get(state, 0) + count
        if state not in MESSAGE_STATES:
            strays[state] = strays.get(state, 0) + count
    untimed = session.scalar(
        select(func.count()).where(Message.run_id == run.id, Message.state == "sent", Message.sent_at.is_(None))
    ) or 0
    return Books(run.records_in, statements, strays, untimed)


@dataclass
class RunReport:
    run_id: int
    communication: str
    cycle: str
    state: str
    records_in: int
    planned: int  # primary messages in the outbox: one per record in when it balances
    statements: dict[str, int]  # state -> count, primary messages only (statements, campaign messages)
    by_channel: dict[str, dict[str, int]]  # channel -> state -> count, all messages
    suppressed_reasons: dict[str, int]
    failure_reasons: dict[str, int]  # dead and failed together (dead_reasons and retry_reasons apart)
    dead_reasons: dict[str, int] = field(default_factory=dict)
    retry_reasons: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # what does not add up (empty: balanced)
    error: str | None = None  # why the run stopped or waits (paused, failed)
    contents: dict[str, dict[str, int]] = field(default_factory=dict)  # slot -> content decided -> statements
    costs: dict[str, str] = field(default_factory=dict)  # channel -> cost of what was sent, and "total"
    currency: str = ""
    fallbacks: dict[str, int] = field(default_factory=dict)  # "email → print: retries exhausted (sent)" -> messages
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
        return not self.problems

    @property
    def complete(self) -> bool:
        return self.balanced and self.unfinished == 0

    def reconciliation(self) -> str:
        s = self.statements
        terms = " + ".join(f"{state} {s.get(state, 0)}" for state in FINAL_STATES)
        if s.get("failed"):
            terms += f" + failed {s['failed']} (retrying)"
        if s.get("deferred"):
            terms += f" + deferred {s['deferred']}"
        still_open = sum(s.get(state, 0) for state in OPEN_STATES)
        if still_open:
            terms += f" + open {still_open}"
        unknown = sum(n for state, n in s.items() if state not in MESSAGE_STATES)
        if unknown:
            terms += f" + unknown {unknown}"
        if not self.balanced:
            verdict = "NOT BALANCED: " + "; ".join(self.problems)
        elif self.complete:
            verdict = "reconciled"
        else:
            verdict = f"open ({self.unfinished} messages to finish)"
        return f"records in {self.records_in}, planned {self.planned} = {terms}: {verdict}"

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
    session: Session, run_id: int, outputs: dict[str, str] | None = None, unit_costs: dict[str, str] | None = None,
    *, settings: dict | None = None,
) -> RunReport:
    run = session.get(Run, run_id)
    if run is None:
        raise LookupError(f"no such run: {run_id}")
    communication = session.get(Communication, run.communication_id)
    by_channel: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Message.channel, Message.state, func.count()).where(Message.run_id == run_id).group_by(Message.channel, Message.state)
    )
    for channel, state, count in rows:
        by_channel.setdefault(channel, {})[state] = count
    books = read_books(session, run)
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
        state=observed_state(run, settings) if settings else run.state,
        records_in=run.records_in,
        planned=books.planned,
        statements=books.statements,
        problems=books.problems(),
        by_channel=by_channel,
        suppressed_reasons=_reasons(session, run_id, ("suppressed",)),
        failure_reasons=_reasons(session, run_id, ("failed", "dead")),
        dead_reasons=_reasons(session, run_id, ("dead",)),
        retry_reasons=_reasons(session, run_id, RETRY_STATES),
        fallbacks=_fallbacks(session, run_id),
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
    """How many statements got which content in each slot (from the messages' decision traces;
    the block shown, where a Typst document showed the Typst form of the one decided)."""
    counts: dict[str, dict[str, int]] = {}
    traces = session.scalars(
        select(Message.decisions).where(Message.run_id == run_id, Message.purpose.in_(PRIMARY_PURPOSES)).execution_options(yield_per=5000)
    )
    for trace in traces:
        for slot, decided in (trace or {}).items():
            decided = decided or {}
            content = decided.get("shown") or decided.get("content") or "(empty)"  # what was printed: a Typst form
            variant = decided.get("variant")
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


def _fallbacks(session: Session, run_id: int) -> dict[str, int]:
    """Messages that went by a fallback channel: from which channels, to which, why the last
    one gave up, and how they ended."""
    rows = session.execute(
        select(Message.fallback_from, Message.channel, Message.fallback_why, Message.state, func.count())
        .where(Message.run_id == run_id, Message.fallback_from.is_not(None))
        .group_by(Message.fallback_from, Message.channel, Message.fallback_why, Message.state)
        .order_by(func.count().desc())
    )
    return {f"{tried.replace(',', ' → ')} → {channel}: {why} ({state})": count for tried, channel, why, state, count in rows}


def list_runs(session: Session, settings: dict) -> list[tuple[Run, str, str]]:
    """Every run, newest first, with its communication's name and its state as observed
    (``interrupted`` for a run whose process died)."""
    rows = session.execute(select(Run, Communication.name).join(Communication).order_by(Run.id.desc()))
    return [(run, name, observed_state(run, settings)) for run, name in rows]
