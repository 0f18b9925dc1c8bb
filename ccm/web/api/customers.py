"""Customers: upsert one (the checks of the customer import), get, search, erase; their
consents, preferences and suppressions, changed as customer service changes them."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from ccm.feedback import (CONSENT_CHANNELS, PreferenceError, change_consent, change_preferences, customer_by_external_id, customer_suppressions,
                          customers_after, erase_customer, lift_suppression, suppress_customer, SuppressionKept)
from ccm.feedback.erase import ErasureError
from ccm.imports import CustomerRejected, upsert_customer
from ccm.models import CHANNEL_KINDS, PURPOSES
from ccm.web.api.auth import caller_name, engine, require
from ccm.web.api.fields import UtcDateTime
from ccm.web.api.idempotency import idempotent
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("customers", __name__, url_prefix="/api/v1/customers", description="Customers and their choices")

class Consent(ma.Schema):
    service = ma.fields.Boolean(load_default=False)
    marketing = ma.fields.Boolean(load_default=False)


class CustomerIn(ma.Schema):
    """A customer as the customer import takes it (its checks apply: e-mail, E.164 phone,
    country, postal code, locale, time zone)."""

    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))
    email = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=254))
    phone = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=32))
    address_line1 = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=200))
    address_line2 = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=200))
    city = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=100))
    region = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=100))
    postal_code = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=20))
    country = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2), metadata={"description": "ISO 3166-1 alpha-2"})
    locale = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=20), metadata={"description": "default en_US"})
    timezone = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=64), metadata={"description": "default UTC"})
    preferred_channel = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(CHANNEL_KINDS))
    paperless = ma.fields.Boolean(load_default=False)
    consent_email = ma.fields.Nested(Consent, allow_none=True)
    consent_sms = ma.fields.Nested(Consent, allow_none=True)
    consent_print = ma.fields.Nested(Consent, allow_none=True)
    consent_inbox = ma.fields.Nested(Consent, allow_none=True, metadata={"description": "signed up for the inbox on the website"})
    consent_webhook = ma.fields.Nested(Consent, allow_none=True, metadata={"description": "reached through the webhook channel"})
    consent_at = ma.fields.DateTime(allow_none=True, metadata={"description": "when the consents were given; default now"})
    consent_source = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=100))
    attributes = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")),
                                values=ma.fields.Raw(allow_none=True), load_default=dict,
                                metadata={"description": "text (up to 1000 characters), numbers, true/false or null"})


class ConsentOut(ma.Schema):
    channel = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True)
    granted = ma.fields.Boolean(required=True)
    recorded_at = UtcDateTime(required=True)
    source = ma.fields.String(required=True)


class CustomerOut(ma.Schema):
    external_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.String(allow_none=True)
    phone = ma.fields.String(allow_none=True)
    address_line1 = ma.fields.String(allow_none=True)
    address_line2 = ma.fields.String(allow_none=True)
    city = ma.fields.String(allow_none=True)
    region = ma.fields.String(allow_none=True)
    postal_code = ma.fields.String(allow_none=True)
    country = ma.fields.String(allow_none=True)
    locale = ma.fields.String(required=True)
    timezone = ma.fields.String(required=True)
    preferred_channel = ma.fields.String(allow_none=True)
    paperless = ma.fields.Boolean(required=True)
    attributes = ma.fields.Dict(required=True)
    preferences = ma.fields.Dict(required=True)
    value_tier = ma.fields.String(allow_none=True)
    lifecycle_stage = ma.fields.String(allow_none=True)
    abc_code = ma.fields.String(allow_none=True)
    rfm = ma.fields.String(allow_none=True)
    engagement_score = ma.fields.Integer(allow_none=True)
    consents = ma.fields.List(ma.fields.Nested(ConsentOut), required=True)


class Upserted(CustomerOut):
    outcome = ma.fields.String(required=True, metadata={"description": "inserted, updated or unchanged"})


class SearchArgs(PageArgs):
    q = ma.fields.String(load_default="", validate=ma.validate.Length(max=200),
                         metadata={"description": "part of the external id, name or e-mail, or a phone number"})


class ConsentChange(ma.Schema):
    channel = ma.fields.String(required=True, validate=ma.validate.OneOf(CONSENT_CHANNELS))
    purpose = ma.fields.String(required=True, validate=ma.validate.OneOf(PURPOSES))
    granted = ma.fields.Boolean(required=True)


class PreferencesIn(ma.Schema):
    paperless = ma.fields.Boolean(required=True)
    preferred_channel = ma.fields.String(allow_none=True, load_default=None, validate=ma.validate.OneOf(CHANNEL_KINDS))
    topics = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=50)), required=True,
                            validate=ma.validate.Length(max=50), metadata={"description": "of [feedback] topics"})
    frequency = ma.fields.String(required=True, validate=ma.validate.Length(max=50), metadata={"description": "of [feedback] frequencies"})


class Changed(ma.Schema):
    external_id = ma.fields.String(required=True)
    changed = ma.fields.List(ma.fields.String(), required=True)


class SuppressionIn(ma.Schema):
    channel = ma.fields.String(required=True, validate=ma.validate.OneOf(("email", "sms")))


class SuppressionOut(ma.Schema):
    channel = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    source = ma.fields.String(required=True)
    created_at = UtcDateTime(required=True)


class Erased(ma.Schema):
    erased = ma.fields.Boolean(required=True)
    messages = ma.fields.Integer(required=True)
    events = ma.fields.Integer(required=True)


def _found(external_id: str) -> Any:
    customer = customer_by_external_id(engine(), external_id)
    if customer is None or customer.erased_at is not None:
        fail(404, f"no such customer: {external_id}", field="external_id")
    return customer


def _as_json(customer: Any) -> dict[str, Any]:
    data = {name: getattr(customer, name) for name in CustomerOut._declared_fields if name != "consents"}
    data["consents"] = sorted(customer.consents, key=lambda c: (c.channel, c.purpose))
    return data


@blueprint.get("")
@require(blueprint, "customers:view")
@blueprint.arguments(SearchArgs, location="query")
@blueprint.response(200, page_schema(CustomerOut, "CustomerPage"))
def search(args: dict):  # type: ignore[no-untyped-def]
    """Search customers, or list them all without ``q``; in pages."""
    found = customers_after(engine(), args["q"], args["after"], args["limit"] + 1)
    result = page(found, args["limit"], lambda customer: customer.id)
    result["items"] = [_as_json(customer) for customer in result["items"]]
    return result


@blueprint.get("/<external_id>")
@require(blueprint, "customers:view")
@errors(blueprint, 404)
@blueprint.response(200, CustomerOut)
def get(external_id: str):  # type: ignore[no-untyped-def]
    """One customer, with their consents and computed fields."""
    return _as_json(_found(external_id))


@blueprint.put("/<external_id>")
@require(blueprint, "customers:edit")
@idempotent(blueprint)
@errors(blueprint, 400)
@blueprint.arguments(CustomerIn)
@blueprint.response(200, Upserted)
def put(values: dict, external_id: str):  # type: ignore[no-untyped-def]
    """Create or replace one customer, checked as the customer import checks a row."""
    values = {**values, "external_id": external_id}
    if values.get("consent_at") is not None:
        values["consent_at"] = values["consent_at"].isoformat()
    try:
        outcome = upsert_customer(engine().db, values, source=f"api:{caller_name()}"[:100])
    except CustomerRejected as exc:
        fail(422, str(exc), field=exc.errors[0].field,
             errors=[{"location": "json", "field": error.field, "detail": error.reason} for error in exc.errors])
    return {**_as_json(_found(external_id)), "outcome": outcome}


@blueprint.delete("/<external_id>")
@require(blueprint, "customers:erase")
@errors(blueprint, 404, 409)
@blueprint.response(200, Erased)
def erase(external_id: str):  # type: ignore[no-untyped-def]
    """Erase the customer's personal data (as ``ccm customers erase``); it cannot be undone."""
    _found(external_id)
    try:
        done = erase_customer(engine(), external_id, actor=caller_name(), via="api")
    except ErasureError as exc:
        fail(409, str(exc))
    return {"erased": True, "messages": done.messages, "events": done.events}


@blueprint.post("/<external_id>/consents")
@require(blueprint, "customers:edit")
@idempotent(blueprint)
@errors(blueprint, 400, 404)
@blueprint.arguments(ConsentChange)
@blueprint.response(200, Changed)
def consent(change: dict, external_id: str):  # type: ignore[no-untyped-def]
    """Give or withdraw a consent on the customer's behalf (recorded with when and by whom)."""
    _found(external_id)
    try:
        return change_consent(engine(), external_id, change["channel"], change["purpose"], change["granted"], caller_name())
    except PreferenceError as exc:
        fail(422, str(exc))


@blueprint.get("/<external_id>/preferences")
@require(blueprint, "customers:view")
@errors(blueprint, 404)
@blueprint.response(200, PreferencesIn)
def preferences(external_id: str):  # type: ignore[no-untyped-def]
    """Paperless, the preferred channel, the topics and the frequency."""
    customer = _found(external_id)
    feedback = engine().settings["feedback"]
    chosen = customer.preferences or {}
    return {"paperless": customer.paperless, "preferred_channel": customer.preferred_channel,
            "topics": list(chosen.get("topics", feedback["topics"])), "frequency": chosen.get("frequency", feedback["frequencies"][0])}


@blueprint.put("/<external_id>/preferences")
@require(blueprint, "customers:edit")
@idempotent(blueprint)
@errors(blueprint, 400, 404)
@blueprint.arguments(PreferencesIn)
@blueprint.response(200, Changed)
def set_preferences(choices: dict, external_id: str):  # type: ignore[no-untyped-def]
    """Set the preferences as the preference centre does."""
    _found(external_id)
    try:
        return change_preferences(engine(), external_id, caller_name(), **choices)
    except PreferenceError as exc:
        fail(422, str(exc))


@blueprint.get("/<external_id>/suppressions")
@require(blueprint, "customers:view")
@errors(blueprint, 404)
@blueprint.response(200, SuppressionOut(many=True))
def suppressions(external_id: str):  # type: ignore[no-untyped-def]
    """The suppressions of the customer's e-mail address and phone number."""
    _found(external_id)
    return customer_suppressions(engine(), external_id)


@blueprint.post("/<external_id>/suppressions")
@require(blueprint, "customers:edit")
@idempotent(blueprint)
@errors(blueprint, 400, 404)
@blueprint.arguments(SuppressionIn)
@blueprint.response(200, Changed)
def suppress(given: dict, external_id: str):  # type: ignore[no-untyped-def]
    """Suppress the customer's address on a channel (reason "manual")."""
    _found(external_id)
    try:
        return suppress_customer(engine(), external_id, given["channel"], caller_name())
    except PreferenceError as exc:
        fail(422, str(exc))


@blueprint.delete("/<external_id>/suppressions/<any(email, sms):channel>")
@require(blueprint, "customers:edit")
@errors(blueprint, 404, 409)
@blueprint.response(200, Changed)
def unsuppress(external_id: str, channel: str):  # type: ignore[no-untyped-def]
    """Lift the suppression of the customer's address on a channel: a manual one, or a hard
    bounce once the address works again. One the customer asked for (unsubscribed,
    complaint, STOP) is 409: only the customer's consent lifts it."""
    _found(external_id)
    try:
        return lift_suppression(engine(), external_id, channel, caller_name())
    except SuppressionKept as exc:
        fail(409, str(exc), field="channel")
