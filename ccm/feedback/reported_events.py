"""What other systems report through ``POST /api/v1/events``: conversions ("bought product
X") and payments ("paid statement 2026-11"), with an amount, idempotent on the caller's
event id. And the API tokens that authenticate them (only a hash is stored).

Body::

    {"id": "pay-2026-11-ACC-1", "type": "payment", "customer": "C-1001",
     "amount": "49.90", "currency": "USD", "occurred_at": "2026-11-30T10:00:00Z",
     "message_id": 123, "reference": "statement 2026-11", "data": {...}}

``type`` is ``conversion`` or ``payment`` (recorded as a response), or an event type a
communication listens to (``payment.received``: it sends that communication to the
customer at once, see ``ccm.triggers``); ``id``, ``type`` and ``customer`` (the external id)
are required; ``message_id`` is optional (without it a conversion is attributed to the
last message sent to the customer within ``[feedback] attribution_days``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import select, update

from ccm import field_values as v
from ccm.wiring import Engine
from ccm.feedback.events import Event, record
from ccm.models.feedback import ApiToken, ResponseEvent
from ccm.models import Communication, Customer, Message, Run, utcnow
from ccm.runs import TriggerConflict, event_types, trigger

API_TYPES = {"conversion": "converted", "payment": "paid"}
MAX_ID = 2**63 - 1  # the largest id a database column holds
EARLIEST, LATEST = dt.datetime(1970, 1, 1), dt.datetime(9999, 12, 31)
FIELDS = {"id", "type", "customer", "amount", "currency", "occurred_at", "message_id", "reference", "data"}


class ApiInputError(ValueError):
    """A request the engine refuses: ``field`` names what is wrong, ``problem`` what kind
    of refusal it is (``invalid`` input, an ``unknown`` customer or message, a ``conflict``
    with what was sent before); the web layer turns it into an HTTP answer."""

    def __init__(self, field: str, reason: str, problem: str = "invalid") -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.problem = field, reason, problem


@dataclass(frozen=True)
class ApiEvent:
    event: Event
    customer: str
    event_id: str
    feedback: bool  # a conversion or payment (recorded), else a trigger (sends)


def parse_event(body: Any, triggers: Iterable[str] = ()) -> ApiEvent:
    """Check the body; ``triggers`` are the event types communications listen to."""
    if not isinstance(body, dict):
        raise ApiInputError("body", "must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ApiInputError(unknown[0], f"unknown field (known: {', '.join(sorted(FIELDS))})")
    try:
        event_id = v.text(body.get("id"), "id", max_length=150, required=True)
        raw_type = body.get("type")
        if isinstance(raw_type, str) and raw_type != raw_type.strip():  # " payment.received" is no event type: say so
            raise v.FieldError("type", f"{raw_type!r} has spaces around it (send {raw_type.strip()!r})")
        kind = v.text(raw_type, "type", max_length=50, required=True)
        if kind not in API_TYPES and kind not in triggers:
            known = ", ".join([*API_TYPES, *triggers])
            raise v.FieldError("type", f"unknown event type {kind!r} (one of: {known})")
        customer = v.text(body.get("customer"), "customer", max_length=64, required=True)
        currency = v.currency(body.get("currency"), "currency")
        amount = v.money(body.get("amount"), "amount", currency_code=currency, required=False)
        if amount is not None and currency is None:
            raise v.FieldError("currency", "is required with an amount")
        occurred = _occurred_at(body.get("occurred_at"))
        reference = v.text(body.get("reference"), "reference", max_length=200)
    except v.FieldError as exc:
        raise ApiInputError(exc.field, exc.reason) from None
    message_id = body.get("message_id")
    if message_id is not None and (isinstance(message_id, bool) or not isinstance(message_id, int) or not 1 <= message_id <= MAX_ID):
        raise ApiInputError("message_id", f"must be a whole number from 1 to {MAX_ID}")
    data = body.get("data", {})
    if not isinstance(data, dict) or len(json.dumps(data)) > 4000:
        raise ApiInputError("data", "must be a JSON object of at most 4000 characters")
    if reference:
        data = {**data, "reference": reference}
    event = Event(key=f"api:{event_id}", type=API_TYPES.get(kind, kind), source="api", occurred_at=occurred or utcnow(),
                  message_id=message_id, amount=amount, currency=currency, data=data)
    return ApiEvent(event, customer, event_id, kind in API_TYPES)


def _occurred_at(value: Any) -> dt.datetime | None:
    """When it happened, between 1970 and 9999 (a year-1 time cannot even be turned to UTC)."""
    if value is None:
        return None
    try:
        occurred = v.datetime_utc(value, "occurred_at")
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, v.FieldError):
            raise
        raise v.FieldError("occurred_at", "is not a time that can be stored") from None
    if not EARLIEST <= occurred <= LATEST:
        raise v.FieldError("occurred_at", f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return occurred


def fingerprint(body: Any) -> str:
    """A hash of the request's content, whatever the order of its keys: the same event id
    sent again must carry the same content (else 409)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiOutcome:
    """What an event did: ``recorded`` (new), ``triggered`` (messages to send now) or
    ``duplicate`` (seen before, nothing changed)."""

    result: str
    payload: dict[str, Any]
    runs_to_deliver: list[int]


def handle_api_event(engine: Engine, body: Any) -> ApiOutcome:
    """Record a conversion or payment, or send what a trigger event asks for."""
    with engine.db.session() as session:
        known = event_types(session)
    parsed = parse_event(body, known)
    request_hash = fingerprint(body)
    with engine.db.session() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == parsed.customer))
    if customer_id is None:
        raise ApiInputError("customer", f"no such customer: {parsed.customer}", problem="unknown")
    if parsed.feedback:
        with engine.db.session() as session:
            parsed.event.customer_id = customer_id
            parsed.event.data = {**parsed.event.data, "request_sha256": request_hash}
            try:
                outcome = record(session, parsed.event, engine.settings)
            except ValueError as exc:  # e.g. no such message
                raise ApiInputError("message_id", str(exc), problem="unknown") from None
            if not outcome.new:
                before = session.scalar(select(ResponseEvent.data).where(ResponseEvent.event_key == parsed.event.key[:200]))
                if (before or {}).get("request_sha256") not in (None, request_hash):
                    raise ApiInputError("id", f"event id {parsed.event_id!r} was sent before with other content", problem="conflict")
        payload = {"recorded": outcome.new, "duplicate": not outcome.new, "event": outcome.event_id, "message_id": outcome.message_id}
        return ApiOutcome("recorded" if outcome.new else "duplicate", payload, [])
    data = dict(parsed.event.data)
    event = {"id": parsed.event_id, "type": (body or {}).get("type"), "occurred_at": parsed.event.occurred_at.isoformat() + "Z",
             "amount": str(parsed.event.amount) if parsed.event.amount is not None else None, "currency": parsed.event.currency,
             "reference": data.pop("reference", None), "data": data}  # every key present: templates may test any of them
    try:
        messages = trigger(engine, event["type"], parsed.event_id, customer_id, event, request_hash)
    except TriggerConflict as exc:
        raise ApiInputError("id", str(exc), problem="conflict") from None
    duplicate = bool(messages) and all(m.duplicate for m in messages)
    payload = {"duplicate": duplicate, "messages": [
        {"communication": m.communication, "message_id": m.message_id, "channel": m.channel, "state": m.state, "reason": m.reason}
        for m in messages]}
    runs = sorted({m.run_id for m in messages if m.state == "pending" and not m.duplicate})
    return ApiOutcome("duplicate" if duplicate else "triggered", payload, runs)


def event_outcome(engine: Engine, event_id: str) -> dict[str, Any] | None:
    """What an event sent through the API did, as it stands now: a conversion or payment
    recorded (with the message it was attributed to), or the messages it triggered with
    their state now (sent, failed, dead ...); None when no event had that id."""
    with engine.db.reader() as session:
        recorded = session.scalar(select(ResponseEvent).where(ResponseEvent.event_key == f"api:{event_id}"[:200]))
        if recorded is not None:
            kind = next((name for name, stored in API_TYPES.items() if stored == recorded.type), recorded.type)
            return {"id": event_id, "type": kind, "result": "recorded", "occurred_at": recorded.occurred_at,
                    "amount": str(recorded.amount) if recorded.amount is not None else None, "currency": recorded.currency,
                    "message_id": recorded.message_id, "communication": recorded.communication, "messages": []}
        names = [name for name, config in session.execute(select(Communication.name, Communication.config)) if config.get("trigger")]
        keys = [f"{name}:event:{event_id}"[:200] for name in names]
        rows = session.execute(select(Message, Communication.name).join(Run, Run.id == Message.run_id)
                               .join(Communication, Communication.id == Run.communication_id)
                               .where(Message.idempotency_key.in_(keys)).order_by(Message.id)).all() if keys else []
        if not rows:
            return None
        event = rows[0][0].data.get("event") or {}
        return {"id": event_id, "type": event.get("type"), "result": "triggered", "occurred_at": rows[0][0].created_at,
                "amount": event.get("amount"), "currency": event.get("currency"), "message_id": None, "communication": None,
                "messages": [{"communication": name, "message_id": m.id, "channel": m.channel if m.channel != "none" else None,
                              "state": m.state, "reason": m.reason, "sent_at": m.sent_at} for m, name in rows]}


# --------------------------------------------------------------------------- tokens


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(engine: Engine, name: str) -> str:
    """A new token; it is shown once, only its hash is kept."""
    token = "ccm_" + secrets.token_urlsafe(32)
    with engine.db.session() as session:
        if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
            raise ValueError(f"a token named {name!r} exists; revoke it first or choose another name")
        session.add(ApiToken(name=name, token_hash=_hash(token), created_at=utcnow()))
    return token


def revoke_token(engine: Engine, name: str) -> None:
    with engine.db.session() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.name == name))
        if token is None:
            raise LookupError(f"no such token: {name}")
        token.revoked_at = token.revoked_at or utcnow()
        token.name = f"{name} (revoked {token.revoked_at:%Y-%m-%d %H:%M:%S})"


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    with engine.db.reader() as session:
        return [
            {"name": t.name, "created_at": t.created_at.isoformat(timespec="seconds") + "Z",
             "last_used_at": t.last_used_at.isoformat(timespec="seconds") + "Z" if t.last_used_at else None,
             "revoked": t.revoked_at is not None}
            for t in session.scalars(select(ApiToken).order_by(ApiToken.id))
        ]


def authenticate(engine: Engine, token: str | None, scope: str = "events") -> str | None:
    """The name of an API token, or None (no such token, revoked, or not allowed ``scope``)."""
    if not token:
        return None
    digest = _hash(token)
    with engine.db.reader() as session:
        found = session.execute(select(ApiToken.id, ApiToken.name, ApiToken.last_used_at, ApiToken.scopes)
                                .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))).first()
    if found is None or scope not in found.scopes.split():
        return None
    now = utcnow()
    if found.last_used_at is None or now - found.last_used_at > dt.timedelta(minutes=1):  # a write a minute, not one per call
        with engine.db.session() as session:
            session.execute(update(ApiToken).where(ApiToken.id == found.id).values(last_used_at=now))
    return found.name
