"""Emitting events: one delivery row per active subscription to the event's type, inserted
in the caller's transaction (an outbox), so an event goes out exactly when what caused it
is committed. Sending is ``ccm.outbound.deliveries``.

A payload is ``{"type", "id", "timestamp", "data"}``; ``data`` names things by id only:
the run, the message, the template, and a customer by their external id; never an
address, a name or a message's content.
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Iterable

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ccm.models import Customer, Message, Run, utcnow
from ccm.models.webhooks import WebhookDelivery, WebhookSubscription



def N_(text: str) -> str:
    """Marks a text for the console's catalogues (``scripts/translations.sh``)."""
    return text


EVENT_TYPES: dict[str, str] = {
    "run.completed": N_("a run finished: completed, or completed with messages no channel could deliver (state undelivered)"),
    "run.needs_attention": N_("a run stopped and needs a person: paused after delivery failures in a row, failed or interrupted"),
    "message.dead": N_("a message was given up: no channel was left to deliver it"),
    "message.bounced": N_("a message bounced (permanent: the address is now suppressed)"),
    "customer.complained": N_("a customer reported a message as spam (the address is suppressed)"),
    "customer.unsubscribed": N_("a customer unsubscribed from marketing on a channel, or sent STOP"),
    "template.approved": N_("a template version was approved"),
    "webhook.test": N_("a test event, sent when asked for (to any subscription, whatever its event types)"),
}
RUN_EVENTS = {"completed": "run.completed", "undelivered": "run.completed",
              "paused": "run.needs_attention", "failed": "run.needs_attention", "interrupted": "run.needs_attention"}
FEEDBACK_EVENTS = {"bounced": "message.bounced", "complained": "customer.complained",
                   "unsubscribed": "customer.unsubscribed", "opted_out": "customer.unsubscribed"}


def timestamp(moment: dt.datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def _subscribers(session: Session, event_type: str) -> list[int]:
    rows = session.execute(select(WebhookSubscription.id, WebhookSubscription.event_types).where(WebhookSubscription.active))
    return [sid for sid, types in rows if event_type in (types or [])]


def queue(session: Session, event_type: str, subscription_ids: Iterable[int], items: Iterable[dict[str, Any]]) -> list[str]:
    """Insert one delivery of each event (``items``: their ``data``) per subscription; the
    events' ids."""
    ids = list(subscription_ids)
    now = utcnow()
    rows, events = [], []
    for data in items:
        event_id = new_event_id()
        events.append(event_id)
        payload = {"type": event_type, "id": event_id, "timestamp": timestamp(now), "data": data}
        rows += [{"subscription_id": sid, "event_type": event_type, "event_id": event_id, "payload": payload, "state": "pending",
                  "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now} for sid in ids]
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    return events


def emit(session: Session, event_type: str, *items: dict[str, Any]) -> int:
    """Emit events of ``event_type`` (one per item, its ``data``) to the subscriptions that
    want them, in the caller's transaction; the number of deliveries queued."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"no such event type: {event_type}")
    subscribers = _subscribers(session, event_type)
    if subscribers:
        queue(session, event_type, subscribers, items)
    return len(subscribers) * len(items)


def emit_run(session: Session, run_id: int) -> int:
    """The event of a run's state as written in this transaction: ``run.completed`` for a
    finished run, ``run.needs_attention`` for one paused, failed or interrupted; none for
    other states."""
    run = session.get(Run, run_id)
    event_type = RUN_EVENTS.get(run.state) if run is not None else None
    if run is None or event_type is None or not _subscribers(session, event_type):
        return 0
    return emit(session, event_type, {"run_id": run.id, "communication": run.communication.name, "cycle": run.cycle,
                                      "state": run.state})


def emit_dead_messages(session: Session, message_ids: Iterable[int]) -> int:
    """``message.dead`` for each of these messages."""
    ids = list(message_ids)
    if not ids or not _subscribers(session, "message.dead"):
        return 0
    rows = session.execute(select(Message.id, Message.run_id, Message.channel, Customer.external_id)
                           .join(Customer, Message.customer_id == Customer.id).where(Message.id.in_(ids)).order_by(Message.id))
    return emit(session, "message.dead", *({"message_id": mid, "run_id": run_id, "channel": channel, "customer": customer}
                                           for mid, run_id, channel, customer in rows))


def emit_feedback(session: Session, kind: str, customer: str, channel: str | None, message_id: int | None, *,
                  permanent: bool = False) -> int:
    """The event of a recorded feedback event of ``kind`` (bounced, complained, unsubscribed,
    opted_out) from the customer with external id ``customer``; none for other kinds."""
    event_type = FEEDBACK_EVENTS.get(kind)
    if event_type is None or not _subscribers(session, event_type):
        return 0
    run_id = session.scalar(select(Message.run_id).where(Message.id == message_id)) if message_id is not None else None
    data: dict[str, Any] = {"customer": customer, "channel": "sms" if kind == "opted_out" else channel,
                            "message_id": message_id, "run_id": run_id}
    if event_type == "message.bounced":
        data["permanent"] = permanent
    return emit(session, event_type, data)
