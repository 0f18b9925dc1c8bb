"""Subscriptions: made, changed, disabled and deleted by staff (the API and the console),
each change audited with its actor in the same transaction. A new subscription gets a
signing secret, returned once (``Created.secret``) and stored sealed
(``ccm.outbound.secrets``). URLs are checked when saved (``http(s)``, no loopback or
private address literal unless ``[webhooks] allow_private``) and again at each attempt,
after the name is resolved.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ccm.models import utcnow
from ccm.models.authoring import AuditLog
from ccm.models.webhooks import WebhookDelivery, WebhookSubscription
from ccm.outbound.events import EVENT_TYPES, queue
from ccm.outbound.secrets import new_secret, seal
from ccm.outbound.transport import Refused, check_url
from ccm.wiring import Engine

CHANGEABLE = ("name", "url", "event_types", "active")


class SubscriptionError(ValueError):
    """A subscription that cannot be saved; ``field`` names the field at fault, ``status``
    the answer it deserves (404 no such subscription, 409 a name taken, 422 a bad value)."""

    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


@dataclass(frozen=True)
class Subscription:
    id: int
    name: str
    url: str
    event_types: list[str]
    active: bool
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    deliveries: dict[str, int]  # state -> count
    last_delivery_at: dt.datetime | None


@dataclass(frozen=True)
class Created:
    subscription: Subscription
    secret: str  # shown once


@dataclass(frozen=True)
class Delivery:
    id: int
    subscription_id: int
    event_type: str
    event_id: str
    state: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    delivered_at: dt.datetime | None


def _audit(session: Any, actor: str, action: str, name: str, **details: Any) -> None:
    session.add(AuditLog(at=utcnow(), actor=actor[:100], action=action[:40], object_type="webhook", object_name=name[:200],
                         details={k: v for k, v in details.items() if v is not None}))


def _view(session: Any, row: WebhookSubscription) -> Subscription:
    counts = dict(session.execute(select(WebhookDelivery.state, func.count()).where(WebhookDelivery.subscription_id == row.id)
                                  .group_by(WebhookDelivery.state)).all())
    last = session.scalar(select(func.max(WebhookDelivery.updated_at)).where(WebhookDelivery.subscription_id == row.id))
    return Subscription(row.id, row.name, row.url, list(row.event_types or []), row.active, row.created_by, row.created_at,
                        row.updated_at, {state: counts.get(state, 0) for state in ("pending", "failed", "delivered", "dead")}, last)


def _delivery(row: WebhookDelivery) -> Delivery:
    return Delivery(row.id, row.subscription_id, row.event_type, row.event_id, row.state, row.attempts, row.next_attempt_at,
                    row.last_status, row.last_error, row.created_at, row.updated_at, row.delivered_at)


def _checked(engine: Engine, values: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(CHANGEABLE))
    if unknown:
        raise SubscriptionError(f"not a field of a subscription: {unknown[0]}", unknown[0])
    if "name" in values:
        values["name"] = str(values["name"]).strip()
        if not 1 <= len(values["name"]) <= 100:
            raise SubscriptionError("a name of 1 to 100 characters is required", "name")
    if "url" in values:
        values["url"] = str(values["url"]).strip()
        if len(values["url"]) > 2000:
            raise SubscriptionError("the URL is longer than 2000 characters", "url")
        try:
            check_url(values["url"], allow_private=bool(engine.settings["webhooks"]["allow_private"]))
        except Refused as exc:
            raise SubscriptionError(str(exc), "url") from None
    if "event_types" in values:
        types = list(dict.fromkeys(values["event_types"]))
        wrong = [name for name in types if name not in EVENT_TYPES or name == "webhook.test"]
        if not types or wrong:
            raise SubscriptionError(f"no such event type: {wrong[0]}" if wrong else "at least one event type is required",
                                    "event_types")
        values["event_types"] = types
    return values


def create_subscription(engine: Engine, name: str, url: str, event_types: list[str], actor: str, *,
                        active: bool = True) -> Created:
    """A new subscription and its signing secret (shown once)."""
    values = _checked(engine, {"name": name, "url": url, "event_types": event_types, "active": active})
    secret = new_secret()
    now = utcnow()
    try:
        with engine.db.session() as session:
            row = WebhookSubscription(**values, secret=seal(engine.settings, secret), created_by=actor[:200], created_at=now,
                                      updated_at=now)
            session.add(row)
            session.flush()
            _audit(session, actor, "webhook.create", row.name, id=row.id, event_types=row.event_types, active=row.active)
            return Created(_view(session, row), secret)
    except IntegrityError:
        raise SubscriptionError(f"a subscription named {values['name']!r} exists already", "name", 409) from None


def change_subscription(engine: Engine, subscription_id: int, actor: str, **changes: Any) -> Subscription:
    """Change the name, URL, event types or whether it is active."""
    values = _checked(engine, dict(changes))
    try:
        with engine.db.session() as session:
            row = session.get(WebhookSubscription, subscription_id)
            if row is None:
                raise SubscriptionError(f"no such subscription: {subscription_id}", "id", 404)
            before = {key: getattr(row, key) for key in values}
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            session.flush()
            changed = {key: [before[key], value] for key, value in values.items() if before[key] != value and key != "url"}
            _audit(session, actor, "webhook.change", row.name, id=row.id, url_changed=("url" in values and before["url"] != row.url)
                   or None, **changed)
            return _view(session, row)
    except IntegrityError:
        raise SubscriptionError(f"a subscription named {values.get('name')!r} exists already", "name", 409) from None


def delete_subscription(engine: Engine, subscription_id: int, actor: str) -> None:
    """Delete the subscription and its deliveries."""
    with engine.db.session() as session:
        row = session.get(WebhookSubscription, subscription_id)
        if row is None:
            raise SubscriptionError(f"no such subscription: {subscription_id}", "id", 404)
        _audit(session, actor, "webhook.delete", row.name, id=row.id)
        session.delete(row)


def get_subscription(engine: Engine, subscription_id: int) -> Subscription | None:
    with engine.db.reader() as session:
        row = session.get(WebhookSubscription, subscription_id)
        return _view(session, row) if row is not None else None


def subscriptions_after(engine: Engine, after: int | None, limit: int) -> list[Subscription]:
    """Subscriptions in id order, after the id ``after``."""
    with engine.db.reader() as session:
        rows = session.scalars(select(WebhookSubscription).where(WebhookSubscription.id > (after or 0))
                               .order_by(WebhookSubscription.id).limit(limit))
        return [_view(session, row) for row in rows]


def deliveries_after(engine: Engine, subscription_id: int, before: int | None, limit: int) -> list[Delivery]:
    """A subscription's deliveries, newest first, older than the id ``before``."""
    with engine.db.reader() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        if before:
            query = query.where(WebhookDelivery.id < before)
        return [_delivery(row) for row in session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit))]


def send_test(engine: Engine, subscription_id: int, actor: str) -> Delivery:
    """Queue a ``webhook.test`` event for the subscription (sent like any other)."""
    with engine.db.session() as session:
        row = session.get(WebhookSubscription, subscription_id)
        if row is None:
            raise SubscriptionError(f"no such subscription: {subscription_id}", "id", 404)
        if not row.active:
            raise SubscriptionError("the subscription is disabled: enable it first", "active", 409)
        [event_id] = queue(session, "webhook.test", [row.id], [{"subscription": row.name}])
        _audit(session, actor, "webhook.test", row.name, id=row.id, event_id=event_id)
        session.flush()
        return _delivery(session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)).one())
