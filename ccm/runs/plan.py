"""Planning a run: snapshot the audience, choose channels, write pending messages.

Planning is idempotent: every message has an idempotency key that does not depend on the
channel (``monthly-statement:2026-11:ACC-1:statement``), so planning the same cycle again,
even after a customer changed channel, adds only what is new and never a second statement.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterator

from sqlalchemy import and_, func, select, true
from sqlalchemy.orm import Session, selectinload

from ccm.communications import ensure_built_in, get_communication, is_marketing
from ccm.decisions import decide_run
from ccm.wiring import Engine
from ccm.models import Communication, Customer, FeedRecord, Message, Run, RunState, utcnow
from ccm.runs import outbox
from ccm.runs.eligibility import Eligibility
from ccm.runs.policy import Choice, PolicyError, sms_reminder
from ccm.runs.compose import check_templates
from ccm.segments import segment_clause
from ccm.authoring import effective_versions, load_pinned, sync_library

log = logging.getLogger(__name__)
CYCLE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
LABEL = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,19}$")  # a campaign's cycle: 2026-11-29, 2026-W48, spring-sale


class PlanError(Exception):
    """The run cannot be planned; the message says why and what to do."""


@dataclass(frozen=True)
class PlanResult:
    run_id: int
    records_in: int
    planned: int
    already_planned: int


def message_key(communication: str, cycle: str, account: str, purpose: str) -> str:
    return f"{communication}:{cycle}:{account}:{purpose}"


def plan_run(engine: Engine, communication_name: str, cycle: str, *, audience: str | None = None) -> PlanResult:
    """Plan the cycle for every customer with billing data, or only the members of a segment
    (``audience``, or the communication's ``audience`` setting; refreshed membership). A
    campaign is planned from its audience instead (see ``plan_audience``)."""
    return _plan(engine, communication_name, cycle, audience=audience)


def plan_audience(engine: Engine, communication_name: str, cycle: str, condition, *, key: Callable[[Customer], str],  # type: ignore[no-untyped-def]
                  purpose: str, data: dict[str, Any]) -> PlanResult:
    """Plan a communication for the customers ``condition`` selects (a SQL condition on
    customers), one message each with the idempotency key ``<communication>:<key(customer)>``
    and ``data`` for the templates (reminders of a date)."""
    return _plan(engine, communication_name, cycle, extra=(condition, key, purpose, data))


def _plan(engine: Engine, communication_name: str, cycle: str, *, audience: str | None = None, extra: tuple | None = None) -> PlanResult:
    with engine.db.session() as session:
        ensure_built_in(session)
        sync_library(session, engine.templates_dir)
        communication = get_communication(session, communication_name)
        from_feed = not is_marketing(communication) and extra is None
        if not from_feed:
            if not LABEL.match(cycle):
                raise PlanError(f"a campaign's cycle is a label of up to 20 letters, digits, '.', '_' or '-' (e.g. 2026-11-29), got {cycle!r}")
        elif not CYCLE.match(cycle):
            raise PlanError(f"cycle must be YYYY-MM, got {cycle!r}")
        run = session.scalar(select(Run).where(Run.communication_id == communication.id, Run.cycle == cycle))
        if run is None:
            outbox.open_run(session, communication_id=communication.id, cycle=cycle, state=RunState.PLANNED,
                            template_versions=effective_versions(session), created_at=utcnow())
            run = session.scalar(select(Run).where(Run.communication_id == communication.id, Run.cycle == cycle))
        elif run.state == RunState.CANCELLED:
            raise PlanError(f"run {run.id} for {communication.name} {cycle} was cancelled")
        problems = check_templates(load_pinned(session, run.template_versions), communication.config)
        if problems:
            raise PlanError("templates have errors, nothing was planned:\n  " + "\n  ".join(problems))
        audience = audience or communication.config.get("audience")
        condition = _audience(session, audience)
        if extra is not None:
            extra_condition, key, purpose, data = extra
            condition = extra_condition if condition is None else and_(condition, extra_condition)
            return _plan_customers(engine, session, run, communication, condition, key=key, purpose=purpose, data=data)
        if not from_feed:
            return _plan_customers(engine, session, run, communication, condition)
        records_in = session.scalar(
            select(func.count()).select_from(FeedRecord).join(Customer, FeedRecord.customer_id == Customer.id)
            .where(FeedRecord.period == cycle, condition if condition is not None else true())
        )
        if not records_in:
            if audience:
                raise PlanError(f"no billing data for cycle {cycle} among the members of segment {audience} (refreshed?)")
            raise PlanError(f"no billing data for cycle {cycle}: import a feed first (ccm feed import FILE)")
        before = session.scalar(select(func.count()).where(Message.run_id == run.id))
        min_due = Decimal(engine.settings["sms"]["payment_due_min_amount"])
        eligibility = _eligibility(engine, session, communication, run.id)
        planned = 0
        # In batches, so memory stays flat however many statements the cycle has; a key that
        # is planned already (a re-run) is skipped by the database, not by a set in memory.
        for records in _feed_batches(session, cycle, condition):
            chosen = eligibility.choose([record.customer for record in records])
            rows = [
                _message_row(run, record.customer_id, record.id, purpose, choice, message_key(communication.name, cycle, record.account, purpose))
                for record in records
                for purpose, choice in _choices(record, chosen[record.customer_id], eligibility.suppressed, min_due)
            ]
            planned += _insert_new(session, rows)
            session.expunge_all()  # the batch's records and customers are done with
        _planned(session, run.id, records_in, planned)
        decide_run(session, run.id)  # each new message's content decisions and their trace
        log.info("run %s planned: %s records, %s new messages", run.id, records_in, planned)
        return PlanResult(run_id=run.id, records_in=records_in, planned=planned, already_planned=before)


PLAN_BATCH = 1000


def _plan_customers(engine: Engine, session: Session, run: Run, communication: Communication, condition, *,  # type: ignore[no-untyped-def]
                    key: Callable[[Customer], str] | None = None, purpose: str = "campaign", data: dict[str, Any] | None = None) -> PlanResult:
    """One message per customer of the audience (everyone not erased, or a segment's members):
    the channel by the policy with the consent the communication needs, suppressed with the
    reason where the customer cannot or does not want to be reached (no consent; for
    marketing also the topic or frequency chosen in the preference centre and the frequency
    cap; a suppressed address). A campaign's experiment hold-out is withheld."""
    audience = and_(Customer.erased_at.is_(None), condition if condition is not None else true())
    records_in = session.scalar(select(func.count()).select_from(Customer).where(audience)) or 0
    if not records_in:
        raise PlanError(f"{communication.name}: the audience is empty (refresh its segment?)")
    before = session.scalar(select(func.count()).where(Message.run_id == run.id))
    eligibility = _eligibility(engine, session, communication, run.id)
    planned = 0
    for customers in _customer_batches(session, audience):
        chosen = eligibility.choose(customers)
        rows = []
        for customer in customers:
            choice = chosen[customer.id]
            unique = f"{communication.name}:{key(customer)}" if key else message_key(communication.name, run.cycle, customer.external_id, purpose)
            row = _message_row(run, customer.id, None, purpose, choice, unique)
            row["data"] = data or {}
            rows.append(row)
        planned += _insert_new(session, rows)
        session.expunge_all()
    _planned(session, run.id, records_in, planned)
    decide_run(session, run.id)
    withheld = withhold_holdout(session, run.id)
    log.info("run %s planned: %s in the audience, %s new messages, %s withheld (hold-out)", run.id, records_in, planned, withheld)
    return PlanResult(run_id=run.id, records_in=records_in, planned=planned, already_planned=before)


def _customer_batches(session: Session, audience) -> Iterator[list[Customer]]:  # type: ignore[no-untyped-def]
    last_id = 0
    while True:
        query = (
            select(Customer).where(audience, Customer.id > last_id)
            .options(selectinload(Customer.consents)).order_by(Customer.id).limit(PLAN_BATCH)
        )
        batch = list(session.scalars(query))
        if not batch:
            return
        last_id = batch[-1].id
        yield batch


def withhold_holdout(session: Session, run_id: int) -> int:
    """A campaign's hold-out group gets nothing: their pending messages are suppressed with
    the reason, and still counted, so their conversions measure what doing nothing earns."""
    held = []
    rows = session.execute(select(Message.id, Message.decisions).where(Message.run_id == run_id, Message.state == "pending"))
    for message_id, trace in rows:
        experiments = sorted({d.get("experiment") for d in (trace or {}).values() if d and d.get("variant") == "holdout"})
        if experiments:
            held.append({"id": message_id, "state": "suppressed", "reason": f"hold-out of experiment {', '.join(experiments)}"})
    outbox.set_messages(session, held)
    return len(held)


def _feed_batches(session: Session, cycle: str, audience=None) -> Iterator[list[FeedRecord]]:  # type: ignore[no-untyped-def]
    """The cycle's feed records with their customers and consents, a batch at a time."""
    last_id = 0
    while True:
        query = (
            select(FeedRecord)
            .join(Customer, FeedRecord.customer_id == Customer.id)
            .where(FeedRecord.period == cycle, FeedRecord.id > last_id, audience if audience is not None else true())
            .options(selectinload(FeedRecord.customer).selectinload(Customer.consents))
            .order_by(FeedRecord.id)
            .limit(PLAN_BATCH)
        )
        batch = list(session.scalars(query))
        if not batch:
            return
        last_id = batch[-1].id
        yield batch


def _insert_new(session: Session, rows: list[dict]) -> int:
    """Add the messages whose idempotency key is new; returns how many were."""
    return len(outbox.add_messages(session, rows))


FINISHED = (RunState.COMPLETED, RunState.UNDELIVERED, RunState.FAILED, RunState.INTERRUPTED)


def _planned(session: Session, run_id: int, records_in: int, planned: int) -> None:
    """The run's records in; a finished run with new messages is planned again."""
    outbox.set_run(session, run_id, records_in=records_in)
    if planned:
        outbox.reopen(session, run_id, RunState.PLANNED, when=FINISHED)
    session.expire_all()


def _audience(session: Session, segment: str | None):  # type: ignore[no-untyped-def]
    if not segment:
        return None
    try:
        return segment_clause(session)(segment)
    except LookupError as exc:
        raise PlanError(f"audience: {exc}") from None


def _eligibility(engine: Engine, session: Session, communication: Communication, run_id: int) -> Eligibility:
    try:
        return Eligibility(engine, session, communication, run_id=run_id)
    except PolicyError as exc:
        raise PlanError(str(exc)) from None


def _choices(record: FeedRecord, statement: Choice, suppressed: dict[tuple[str, str], str], min_due: Decimal) -> list[tuple[str, Choice]]:
    """The statement's channel, and an SMS payment reminder where an amount is due."""
    choices = [("statement", statement)]
    reminder = sms_reminder(record.customer, record.amount_due, min_due, suppressed)
    if reminder is not None:
        choices.append(("sms.payment_due", reminder))
    return choices


def _message_row(run: Run, customer_id: int, feed_record_id: int | None, purpose: str, choice: Choice, key: str) -> dict:
    now = utcnow()
    return {
        "run_id": run.id,
        "customer_id": customer_id,
        "feed_record_id": feed_record_id,
        "channel": choice.channel or "none",
        "purpose": purpose,
        "idempotency_key": key,
        "state": "pending" if choice.channel and not choice.suppressed else "suppressed",
        "reason": choice.reason,
        "attempts": 0,
        "template_versions": {},
        "decisions": {},
        "created_at": now,
        "updated_at": now,
    }
