"""Sending the deliveries that are due: each is claimed (its ``next_attempt_at`` moved past
the attempt, so no other sender takes it meanwhile), signed and POSTed once, and its
outcome written:

- delivered on a 2xx answer;
- on a 408, 429, 5xx, timeout or connection error it waits (state "failed") and is
  retried after ``retry_base_seconds * 2^(attempts-1)``, capped at ``retry_cap_seconds``,
  with equal jitter (half fixed, half random), and at least what ``Retry-After`` asks
  (up to the cap); after ``max_attempts`` it is dead;
- dead at once on any other answer (4xx), a redirect to another host, a refused target
  or a secret that no longer opens.

Signing follows Standard Webhooks (the ``standardwebhooks`` package): ``webhook-id`` (the
event's id, the same at every attempt, for the receiver to drop repeats),
``webhook-timestamp`` (of the attempt) and ``webhook-signature``
(``v1,`` base64 HMAC-SHA256 of ``id.timestamp.body``). Deliveries of a disabled
subscription wait until it is enabled again.

Logged: a delivery's id, its subscription's id, the event type and the outcome; never the
URL, the secret or the payload.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import random
import ssl
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from standardwebhooks import Webhook

from ccm.models import utcnow
from ccm.models.webhooks import WebhookDelivery, WebhookSubscription
from ccm.outbound.secrets import SecretUnreadable, reseal, unseal
from ccm.outbound.transport import Answer, post
from ccm.wiring import Engine

log = logging.getLogger(__name__)
USER_AGENT = "ccm-webhooks/1"
DUE_STATES = ("pending", "failed")


@dataclass
class Sent:
    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    @property
    def summary(self) -> str:
        return f"{self.delivered} delivered, {self.retrying} to retry, {self.dead} dead"


def backoff(settings: dict, attempts: int, asked: float | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` attempts (equal jitter, at least
    ``asked`` by Retry-After, all capped)."""
    base, cap = float(settings["retry_base_seconds"]), float(settings["retry_cap_seconds"])
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    wait = ceiling / 2 + random.uniform(0, ceiling / 2)
    return min(cap, max(wait, asked or 0.0))


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def signed_headers(secret: str, event_id: str, body: bytes, moment: dt.datetime) -> dict[str, str]:
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT, "webhook-id": event_id,
            "webhook-timestamp": str(int(moment.replace(tzinfo=dt.timezone.utc).timestamp())),
            "webhook-signature": Webhook(secret).sign(event_id, moment, body)}


def _due(engine: Engine, now: dt.datetime, limit: int) -> list[int]:
    with engine.db.reader() as session:
        return list(session.scalars(
            select(WebhookDelivery.id).join(WebhookSubscription)
            .where(WebhookDelivery.state.in_(DUE_STATES), WebhookDelivery.next_attempt_at <= now, WebhookSubscription.active)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)))


def _claim(engine: Engine, delivery_id: int, now: dt.datetime, lease: dt.timedelta) -> tuple[str, str, str, dict] | None:
    """Take the delivery for one attempt: (url, sealed secret, event id, payload), or None
    when another sender took it first."""
    with engine.db.session() as session:
        taken = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state.in_(DUE_STATES),
                   or_(WebhookDelivery.next_attempt_at <= now, WebhookDelivery.next_attempt_at.is_(None)))
            .values(next_attempt_at=now + lease)).rowcount
        if taken != 1:
            return None
        delivery = session.get(WebhookDelivery, delivery_id)
        subscription = delivery.subscription
        try:
            subscription.secret = reseal(engine.settings, subscription.secret) or subscription.secret  # sealed before Fernet
        except SecretUnreadable:
            pass  # the attempt says so
        return subscription.url, subscription.secret, delivery.event_id, dict(delivery.payload)


def attempt(engine: Engine, delivery_id: int, *, now: dt.datetime | None = None, tls: ssl.SSLContext | None = None) -> str | None:
    """One attempt at a delivery that is due; its state after it (None: not due, or taken)."""
    settings = engine.settings["webhooks"]
    now = now or utcnow()
    timeout = float(settings["timeout_seconds"])
    claimed = _claim(engine, delivery_id, now, dt.timedelta(seconds=2 * timeout + 30))
    if claimed is None:
        return None
    url, sealed, event_id, payload = claimed
    try:
        secret = unseal(engine.settings, sealed)
    except SecretUnreadable as exc:
        answer = Answer("dead", error=str(exc))
    else:
        body = body_of(payload)
        answer = post(url, body, signed_headers(secret, event_id, body, utcnow()), timeout=timeout,
                      allow_private=bool(settings["allow_private"]), tls=tls)
    return _record(engine, delivery_id, answer, settings)


def _record(engine: Engine, delivery_id: int, answer: Answer, settings: dict) -> str:
    now = utcnow()
    with engine.db.session() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        delivery.attempts += 1
        delivery.last_status, delivery.last_error, delivery.updated_at = answer.status, answer.error and answer.error[:300], now
        if answer.outcome == "delivered":
            delivery.state, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
        elif answer.outcome == "retry" and delivery.attempts < int(settings["max_attempts"]):
            wait = backoff(settings, delivery.attempts, answer.retry_after)
            delivery.state, delivery.next_attempt_at = "failed", now + dt.timedelta(seconds=wait)
        else:
            if answer.outcome == "retry":
                delivery.last_error = f"gave up after {delivery.attempts} attempts; last: {answer.error}"[:300]
            delivery.state, delivery.next_attempt_at = "dead", None
        state = delivery.state
        level = logging.INFO if state == "delivered" else logging.WARNING
        log.log(level, "webhook delivery %s (subscription %s, %s): %s after attempt %s%s", delivery.id, delivery.subscription_id,
                delivery.event_type, state, delivery.attempts, f" ({answer.error})" if answer.error else "")
    return state


def deliver_due(engine: Engine, *, now: dt.datetime | None = None, limit: int | None = None,
                tls: ssl.SSLContext | None = None) -> Sent:
    """Send the deliveries due now (at most ``limit``, default ``[webhooks] batch``), one
    attempt each, oldest first."""
    now = now or utcnow()
    done = Sent()
    for delivery_id in _due(engine, now, limit or int(engine.settings["webhooks"]["batch"])):
        state = attempt(engine, delivery_id, now=now, tls=tls)
        if state == "delivered":
            done.delivered += 1
        elif state == "failed":
            done.retrying += 1
        elif state == "dead":
            done.dead += 1
    return done


def prune_deliveries(engine: Engine, *, now: dt.datetime | None = None) -> int:
    """Delete the deliveries that are done (delivered or dead) and whose last attempt is
    more than ``[webhooks] keep_days`` old; those waiting for a retry stay. Returns how many."""
    cutoff = (now or utcnow()) - dt.timedelta(days=int(engine.settings["webhooks"]["keep_days"]))
    with engine.db.session() as session:
        pruned = session.execute(delete(WebhookDelivery).where(WebhookDelivery.state.in_(("delivered", "dead")),
                                                               WebhookDelivery.updated_at < cutoff)).rowcount
    if pruned:
        log.info("webhook deliveries: %s older than %s deleted", pruned, cutoff.date())
    return pruned
