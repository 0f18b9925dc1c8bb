"""Outbound webhooks: subscriptions of other systems to the engine's events (list, create
with the signing secret shown once, get, change, delete), each subscription's deliveries
(newest first) and a test event. All need ``webhooks:manage``; changes are audited."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from ccm.outbound import (EVENT_TYPES, SubscriptionError, change_subscription, create_subscription, delete_subscription,
                          deliveries_after, get_subscription, send_test, subscriptions_after)
from ccm.web.api.auth import caller_name, engine, require
from ccm.web.api.fields import UtcDateTime
from ccm.web.api.idempotency import idempotent
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks",
                      description="Outbound webhooks: the engine's events POSTed to other systems, signed (Standard Webhooks)")

PERMISSION = "webhooks:manage"
ID = "<int(max=2147483647):subscription_id>"
SUBSCRIBABLE = [name for name in EVENT_TYPES if name != "webhook.test"]
PRINTABLE = ma.validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="no control characters")
TYPES_HELP = "; ".join(f"`{name}`: {text}" for name, text in EVENT_TYPES.items() if name != "webhook.test")


class SubscriptionIn(ma.Schema):
    name = ma.fields.String(required=True, validate=[ma.validate.Length(1, 100), PRINTABLE])
    url = ma.fields.String(required=True, validate=ma.validate.Length(1, 2000),
                           metadata={"description": "http(s); loopback and private addresses only with [webhooks] allow_private"})
    event_types = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(SUBSCRIBABLE)), required=True,
                                 validate=ma.validate.Length(1, len(SUBSCRIBABLE)), metadata={"description": TYPES_HELP})
    active = ma.fields.Boolean(load_default=True)


class SubscriptionChange(ma.Schema):
    name = ma.fields.String(validate=[ma.validate.Length(1, 100), PRINTABLE])
    url = ma.fields.String(validate=ma.validate.Length(1, 2000))
    event_types = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(SUBSCRIBABLE)),
                                 validate=ma.validate.Length(1, len(SUBSCRIBABLE)))
    active = ma.fields.Boolean(metadata={"description": "false: no new events, and waiting deliveries wait until true again"})


class DeliveryCounts(ma.Schema):
    pending = ma.fields.Integer(required=True)
    failed = ma.fields.Integer(required=True, metadata={"description": "waiting for their retry"})
    delivered = ma.fields.Integer(required=True)
    dead = ma.fields.Integer(required=True)


class SubscriptionOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    url = ma.fields.String(required=True)
    event_types = ma.fields.List(ma.fields.String(), required=True)
    active = ma.fields.Boolean(required=True)
    created_by = ma.fields.String(required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)
    deliveries = ma.fields.Nested(DeliveryCounts, required=True)
    last_delivery_at = UtcDateTime(allow_none=True, required=True)


class SubscriptionCreated(SubscriptionOut):
    secret = ma.fields.String(required=True, metadata={"description": "the signing secret (whsec_...): shown this once only"})


class DeliveryOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    event_type = ma.fields.String(required=True)
    event_id = ma.fields.String(required=True, metadata={"description": "the payload's id and the webhook-id header"})
    state = ma.fields.String(required=True, metadata={"description": "pending, failed (waits for its retry), delivered or dead"})
    attempts = ma.fields.Integer(required=True)
    next_attempt_at = UtcDateTime(allow_none=True, required=True)
    last_status = ma.fields.Integer(allow_none=True, required=True)
    last_error = ma.fields.String(allow_none=True, required=True)
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)
    delivered_at = UtcDateTime(allow_none=True, required=True)


def _refused(exc: SubscriptionError) -> None:
    fail(exc.status, str(exc), **({"field": exc.field} if exc.field else {}))


def _found(subscription_id: int) -> Any:
    found = get_subscription(engine(), subscription_id)
    if found is None:
        fail(404, f"no such subscription: {subscription_id}", field="subscription_id")
    return found


@blueprint.get("")
@require(blueprint, PERMISSION)
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, page_schema(SubscriptionOut, "SubscriptionPage"))
def search(args: dict):  # type: ignore[no-untyped-def]
    """The subscriptions, in pages, with the counts of their deliveries by state."""
    return page(subscriptions_after(engine(), args["after"], args["limit"] + 1), args["limit"], lambda found: found.id)


@blueprint.post("")
@require(blueprint, PERMISSION)
@idempotent(blueprint)
@errors(blueprint, 409)
@blueprint.arguments(SubscriptionIn)
@blueprint.response(201, SubscriptionCreated)
def create(body: dict):  # type: ignore[no-untyped-def]
    """Subscribe a URL to event types. The answer holds the signing secret, shown this once:
    receivers check ``webhook-signature`` with it (Standard Webhooks)."""
    try:
        created = create_subscription(engine(), body["name"], body["url"], body["event_types"], caller_name(), active=body["active"])
    except SubscriptionError as exc:
        _refused(exc)
    return {**asdict(created.subscription), "secret": created.secret}


@blueprint.get(f"/{ID}")
@require(blueprint, PERMISSION)
@errors(blueprint, 404)
@blueprint.response(200, SubscriptionOut)
def get(subscription_id: int):  # type: ignore[no-untyped-def]
    """One subscription (its secret is never shown again)."""
    return _found(subscription_id)


@blueprint.patch(f"/{ID}")
@require(blueprint, PERMISSION)
@errors(blueprint, 404, 409)
@blueprint.arguments(SubscriptionChange)
@blueprint.response(200, SubscriptionOut)
def change(body: dict, subscription_id: int):  # type: ignore[no-untyped-def]
    """Change the name, URL or event types, or disable and enable the subscription."""
    try:
        return change_subscription(engine(), subscription_id, caller_name(), **body)
    except SubscriptionError as exc:
        _refused(exc)


@blueprint.delete(f"/{ID}")
@require(blueprint, PERMISSION)
@errors(blueprint, 404)
@blueprint.response(204)
def remove(subscription_id: int):  # type: ignore[no-untyped-def]
    """Delete the subscription and its deliveries (those waiting are not sent)."""
    try:
        delete_subscription(engine(), subscription_id, caller_name())
    except SubscriptionError as exc:
        _refused(exc)


@blueprint.get(f"/{ID}/deliveries")
@require(blueprint, PERMISSION)
@errors(blueprint, 404)
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, page_schema(DeliveryOut, "WebhookDeliveryPage"))
def deliveries(args: dict, subscription_id: int):  # type: ignore[no-untyped-def]
    """The subscription's deliveries, newest first, with their attempts and last answer."""
    _found(subscription_id)
    found = deliveries_after(engine(), subscription_id, args["after"], args["limit"] + 1)
    return page(found, args["limit"], lambda delivery: delivery.id)


@blueprint.post(f"/{ID}/test")
@require(blueprint, PERMISSION)
@idempotent(blueprint)
@errors(blueprint, 404, 409)
@blueprint.response(202, DeliveryOut)
def test_event(subscription_id: int):  # type: ignore[no-untyped-def]
    """Queue a ``webhook.test`` event for the subscription; it goes out with the next
    deliveries (follow it in ``/deliveries``). 409 when the subscription is disabled."""
    try:
        return send_test(engine(), subscription_id, caller_name())
    except SubscriptionError as exc:
        _refused(exc)
