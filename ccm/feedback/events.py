"""Recording feedback: every event once, linked to its message, run, communication, variant
and customer, with its effects applied in the same transaction.

Effects (none for an event seen before, none for a bot's hit):

- opened, clicked, replied, converted, paid: the customer's engagement fields (last open,
  last click, last response, counts) move at once;
- unsubscribed: marketing consent on that channel is withdrawn (service messages such as
  statements still arrive; the preference centre can stop those too);
- opted_out (an SMS STOP): the number is suppressed for every SMS;
- bounced (hard, i.e. permanent): the address that bounced is suppressed on its channel
  (an e-mail address: a statement then goes by post; a phone number: no more SMS), and
  where the communication has a fallback channel the message is sent that way too
  (``ccm.runs.fallback_after_bounce``);
- complained: the e-mail address is suppressed, and e-mail marketing consent withdrawn.

Conversions that name no message are attributed to the last campaign message the customer
was sent within ``[feedback] attribution_days`` before the event, or to the hold-out message
they did not get (so the hold-out's conversions are counted too), or to the offer shown to
them in real time (the decision API's exposure) when that came later: the event then names
the exposure's communication and variant and no message. Payments go to the last service
message (statement, bill) in that window.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ccm import outbound
from ccm.db import insert_or_ignore
from ccm.runs import address, fallback_after_bounce
from ccm.models.feedback import ATTRIBUTED, ENGAGEMENT, EVENT_TYPES, RESPONSES, DecisionExposure, ResponseEvent  # noqa: F401  (the vocabulary, also for callers of this module)
from ccm.models import Communication, Consent, Customer, Message, Run, Suppression, utcnow

log = logging.getLogger(__name__)



class EventError(ValueError):
    """An event that cannot be recorded: the message names the field."""


@dataclass
class Event:
    key: str  # idempotency: provider event id, API event id, or the tracked message (and link)
    type: str
    source: str  # track, api, inbound, dsn
    occurred_at: dt.datetime  # naive UTC
    message_id: int | None = None
    customer_id: int | None = None
    channel: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    bot: bool = False
    permanent: bool = False  # for bounces: hard (permanent: the address is suppressed) or soft
    detail: str | None = None  # short, never personal data
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    new: bool  # False: seen before, nothing changed
    event_id: int | None
    message_id: int | None
    customer_id: int | None


@dataclass(frozen=True)
class MessageInfo:
    """What an event needs to know of its message, read in one query."""

    id: int
    customer_id: int
    run_id: int
    communication: str
    channel: str
    variant: str | None
    sent_at: dt.datetime | None
    links: list[str]


# Statements built once with bound parameters: every open and click runs them, and building
# and caching a statement anew each time cost more than running it.
_MESSAGE_INFO = (
    select(Message.id, Message.customer_id, Message.run_id, Communication.name, Message.channel, Message.decisions,
           Message.sent_at, Message.links)
    .join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
    .where(Message.id == bindparam("message_id"))
)
_SEEN = select(ResponseEvent.id).where(ResponseEvent.event_key == bindparam("key"))
_INSERT = {
    name: dialect(ResponseEvent).on_conflict_do_nothing(index_elements=["event_key"]).returning(ResponseEvent.id)
    for name, dialect in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}  # made once: this insert runs for every open and click


def _later(column: Any) -> Any:
    """SQL for the later of a column and the event's time (events may arrive out of order)."""
    at = bindparam("at", type_=DateTime())
    return case((or_(column.is_(None), column < at), at), else_=column)


def _engagement_update(kind: str) -> Any:
    values: dict[str, Any] = {"last_response_at": _later(Customer.last_response_at)}
    if kind == "opened":
        values.update(last_open_at=_later(Customer.last_open_at), open_count=Customer.open_count + 1)
    if kind == "clicked":
        values.update(last_click_at=_later(Customer.last_click_at), click_count=Customer.click_count + 1)
    if kind in RESPONSES:
        values["response_count"] = Customer.response_count + 1
    return (update(Customer).where(Customer.id == bindparam("customer_id"), Customer.erased_at.is_(None)).values(**values)
            .execution_options(synchronize_session=False))


_ENGAGEMENT_UPDATES = {kind: _engagement_update(kind) for kind in ENGAGEMENT}


def message_info(session: Session, message_id: int) -> MessageInfo | None:
    row = session.execute(_MESSAGE_INFO, {"message_id": message_id}).first()
    if row is None:
        return None
    return MessageInfo(row[0], row[1], row[2], row[3], row[4], variant_of(row[5]), row[6], list(row[7] or []))


def seen(session: Session, key: str) -> bool:
    """Whether an event with this key is recorded already (a cheap read before a write)."""
    return session.execute(_SEEN, {"key": key[:200]}).first() is not None


def record(session: Session, event: Event, settings: dict, message: MessageInfo | None = None) -> Recorded:
    """Store the event once and apply its effects; a repeat changes nothing. ``message``
    saves looking up ``event.message_id`` again when the caller has it."""
    if event.type not in EVENT_TYPES:
        raise EventError(f"unknown event type {event.type!r} (one of: {', '.join(EVENT_TYPES)})")
    if message is None and event.message_id is not None:
        message = message_info(session, event.message_id)
        if message is None:
            raise EventError(f"no such message: {event.message_id}")
        if event.customer_id is not None and message.customer_id != event.customer_id:
            raise EventError(f"message {event.message_id} was not sent to this customer")
    exposure = None
    if message is None and event.type in ATTRIBUTED and event.customer_id is not None:
        days = settings["feedback"]["attribution_days"]
        found = attribute(session, event.customer_id, event.occurred_at, days, marketing=event.type == "converted")
        if event.type == "converted":  # shown an offer in real time since that message: the offer's
            exposure = last_exposure(session, event.customer_id, event.occurred_at, days,
                                     after=None if found is None else found.sent_at or found.updated_at)
        message = message_info(session, found.id) if found is not None and exposure is None else None
    customer_id = message.customer_id if message is not None else event.customer_id
    data = {**event.data, "permanent": event.permanent} if event.type == "bounced" else event.data
    row = {
        "event_key": event.key[:200],
        "type": event.type,
        "source": event.source,
        "channel": event.channel or (message.channel if message is not None else None),
        "message_id": message.id if message is not None else None,
        "run_id": message.run_id if message is not None else None,
        "communication": message.communication if message is not None else exposure.communication if exposure is not None else None,
        "variant": message.variant if message is not None else exposure_variant(exposure),
        "customer_id": customer_id,
        "occurred_at": event.occurred_at,
        "recorded_at": utcnow(),
        "amount": event.amount,
        "currency": event.currency,
        "bot": event.bot,
        "detail": (event.detail or None) and event.detail[:300],
        "data": data if exposure is None else {**data, "exposure": exposure.id},
    }
    event_id = session.execute(_INSERT[session.get_bind().dialect.name], row).scalar()
    if event_id is None:
        return Recorded(False, None, row["message_id"], customer_id)
    if not event.bot and customer_id is not None:
        _apply(session, event, customer_id, row["channel"], row["message_id"])
    log.info("event %s: %s (message %s)", event_id, event.type, row["message_id"])
    return Recorded(True, event_id, row["message_id"], customer_id)


def variant_of(decisions: dict | None) -> str | None:
    """``experiment/variant`` of a message's first experiment (from its decision trace), if any."""
    for trace in (decisions or {}).values():
        if trace and trace.get("experiment"):
            return f"{trace['experiment']}/{trace['variant']}"
    return None


def attribute(session: Session, customer_id: int, when: dt.datetime, days: int, *, marketing: bool) -> Message | None:
    """The message an unattributed event answers: a conversion (``marketing``) the last
    campaign message sent to the customer within ``days`` before ``when``, or the hold-out
    message withheld from them in that window, whichever is later; a payment the last
    service message (a statement, a bill, a reminder) in that window. A conversion after
    a payment confirmation is the campaign's; a bill paid after an offer is the bill's."""
    since = when - dt.timedelta(days=days)
    sent = and_(Message.state == "sent", Message.sent_at.between(since, when))
    held = and_(Message.state == "suppressed", Message.reason.like("hold-out%"), Message.updated_at.between(since, when))
    kind = Communication.kind == "marketing" if marketing else Communication.kind != "marketing"
    moment = func.coalesce(Message.sent_at, Message.updated_at)
    return session.scalars(
        select(Message).join(Run, Message.run_id == Run.id).join(Communication, Run.communication_id == Communication.id)
        .where(Message.customer_id == customer_id, kind, or_(sent, held) if marketing else sent)
        .order_by(moment.desc(), Message.id.desc()).limit(1)
    ).first()


def last_exposure(session: Session, customer_id: int, when: dt.datetime, days: int, after: dt.datetime | None) -> DecisionExposure | None:
    """The last decision shown to the customer in real time (``ccm.decisions.decide_now``)
    within ``days`` before ``when`` and later than ``after`` (the message a conversion
    would otherwise answer): the last touch before it."""
    since = when - dt.timedelta(days=days)
    since = max(since, after) if after is not None else since
    return session.scalars(select(DecisionExposure).where(DecisionExposure.customer_id == customer_id, DecisionExposure.at > since,
                                                          DecisionExposure.at <= when)
                           .order_by(DecisionExposure.at.desc(), DecisionExposure.id.desc()).limit(1)).first()


def exposure_variant(exposure: DecisionExposure | None) -> str | None:
    """``experiment/variant`` of what a real-time decision showed, if it was an experiment's."""
    return f"{exposure.experiment}/{exposure.variant}" if exposure is not None and exposure.experiment else None


def _apply(session: Session, event: Event, customer_id: int, channel: str | None, message_id: int | None) -> None:
    at = event.occurred_at
    if event.type in ENGAGEMENT:  # one UPDATE, no read: this runs for every open and click
        session.execute(_ENGAGEMENT_UPDATES[event.type], {"customer_id": customer_id, "at": at})
        return
    customer = session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None:
        return
    if event.type == "unsubscribed":
        withdraw_consent(session, customer, channel or "email", "marketing", f"{event.source}: unsubscribe")
    elif event.type == "opted_out":
        suppress(session, "sms", address(customer, "sms"), "stop", f"{event.source}: STOP")
    elif event.type == "bounced" and event.permanent:  # the address that bounced, on its own channel
        bounced_channel = channel if channel in ("email", "sms") else "email"
        suppress(session, bounced_channel, address(customer, bounced_channel), "hard_bounce", event.source)
        if message_id is not None:  # e-mail hard bounce -> print, as at send time
            fallback_after_bounce(session, message_id)
    elif event.type == "complained":
        suppress(session, "email", address(customer, "email"), "complaint", event.source)
        withdraw_consent(session, customer, "email", "marketing", f"{event.source}: complaint")
    outbound.emit_feedback(session, event.type, customer.external_id, channel, message_id, permanent=event.permanent)
    session.expire(customer)


def suppress(session: Session, channel: str, where: str | None, reason: str, source: str) -> None:
    """Add the address to the suppression list (kept as it is if it is there already)."""
    if not where:
        return
    session.execute(
        insert_or_ignore(session, Suppression, "channel", "address")
        .values(channel=channel, address=where, reason=reason, source=source[:100], created_at=utcnow())
    )


def withdraw_consent(session: Session, customer: Customer, channel: str, purpose: str, source: str) -> None:
    set_consent(session, customer, channel, purpose, False, source)


def set_consent(session: Session, customer: Customer, channel: str, purpose: str, granted: bool, source: str) -> None:
    """Record the customer's own choice for one channel and purpose, with when and how."""
    consent = session.scalar(
        select(Consent).where(Consent.customer_id == customer.id, Consent.channel == channel, Consent.purpose == purpose)
    )
    if consent is None:
        session.add(Consent(customer_id=customer.id, channel=channel, purpose=purpose, granted=granted, source=source[:100], recorded_at=utcnow()))
    elif consent.granted != granted:
        consent.granted, consent.source, consent.recorded_at = granted, source[:100], utcnow()
    session.flush()
