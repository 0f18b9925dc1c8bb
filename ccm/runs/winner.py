"""Send the winner to the rest: once an experiment has a significant winner, a follow-up
run of the campaign's communication (cycle ``<cycle>-rest``) goes to the customers of the
audience the cycle's run has not written to, with the winning variant for everyone but the
hold-out; it is planned like any campaign run (consent, preferences, caps) and executed in
the background like a cycle started from the console."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select

from ccm.communications import get_communication
from ccm.decisions import apply_winner
from ccm.models import Customer, Message, Run
from ccm.runs.background import launch, executing
from ccm.runs.executor import load_run
from ccm.runs.outbox import observed_state
from ccm.runs.plan import PlanError, plan_audience
from ccm.runs.service import check_channels, check_executor
from ccm.segments import segment_clause
from ccm.wiring import Engine

REST = "-rest"


@dataclass(frozen=True)
class WinnerSent:
    run_id: int
    cycle: str
    planned: int
    winner_given: int


def rest_cycle(cycle: str) -> str:
    return cycle[:20 - len(REST)] + REST


def send_winner(engine: Engine, communication: str, cycle: str, experiment: str, variant: str, *,
                audience: str | None = None, start: bool = True) -> WinnerSent:
    """Plan (idempotent) the follow-up run of ``cycle`` for the rest of the audience (the
    segment ``audience``, or the communication's own) with ``variant`` of ``experiment``,
    and execute it in the background when ``start``. The rest: customers with no message in
    the cycle's run, or only one suppressed for a reason other than the hold-out."""
    if cycle.endswith(REST):
        raise PlanError(f"{cycle} is the rest of a cycle already")
    if start:
        check_channels(engine)
        check_executor(engine, None)
    with engine.db.reader() as session:
        comm = get_communication(session, communication)
        base = session.scalar(select(Run.id).where(Run.communication_id == comm.id, Run.cycle == cycle))
        if base is None:
            raise PlanError(f"{comm.name} has no run for cycle {cycle}")
        name = comm.name
        member = segment_clause(session)(audience) if audience else None
    reached = select(Message.customer_id).where(
        Message.run_id == base, or_(Message.state != "suppressed", Message.reason.like("hold-out%")))
    condition = Customer.id.not_in(reached)
    if member is not None:
        condition = and_(condition, member)
    follow = rest_cycle(cycle)
    plan = plan_audience(engine, name, follow, condition, key=lambda c: f"{follow}:{c.external_id}:campaign", purpose="campaign",
                         data={})
    with engine.db.session() as session:
        given = apply_winner(session, plan.run_id, experiment, variant)
    if start:
        with engine.db.reader() as session:
            state = observed_state(load_run(session, plan.run_id), engine.settings)
        if state not in ("running", "paused", "cancelled") and not executing(plan.run_id):
            launch(engine, plan.run_id)
    return WinnerSent(plan.run_id, follow, plan.planned, given)
