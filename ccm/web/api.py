"""The REST API, ``/api/v1``: token-authenticated (``Authorization: Bearer <token>``, made
with ``ccm tokens create NAME``), JSON in and out, described at ``/api/v1/openapi.json``."""
from __future__ import annotations

import functools
from typing import Any, Callable

from flask import Blueprint, current_app, g, jsonify, request

from ccm.feedback.api import API_TYPES, ApiInputError, authenticate, handle_api_event
from ccm.triggers import dispatcher

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


def _engine():  # type: ignore[no-untyped-def]
    return current_app.extensions["ccm"]


def token_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        name = authenticate(_engine(), request.headers.get("Authorization"))
        if name is None:
            response = jsonify(error="a valid API token is required (Authorization: Bearer <token>)")
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="ccm"'
            return response
        g.api_token = name
        return view(*args, **kwargs)

    return inner


@blueprint.post("/events")
@token_required
def post_event():  # type: ignore[no-untyped-def]
    body = request.get_json(silent=True)
    try:
        outcome = handle_api_event(_engine(), body)
    except ApiInputError as exc:
        return jsonify(error=exc.reason, field=exc.field), exc.status
    for run_id in outcome.runs_to_deliver:  # a triggered message goes out now, not with the next run
        dispatcher(_engine()).submit(run_id)
    return jsonify(outcome.payload), outcome.status


@blueprint.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(OPENAPI)


_ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "field": {"type": "string"}}, "required": ["error"]}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "CCM engine API", "version": "1"},
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "made with `ccm tokens create NAME`"}},
        "schemas": {
            "Error": _ERROR,
            "Event": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "type", "customer"],
                "properties": {
                    "id": {"type": "string", "maxLength": 150, "description": "your id of the event; sending it again records nothing new"},
                    "type": {"type": "string", "maxLength": 50,
                             "description": f"{' or '.join(sorted(API_TYPES))} (recorded as a response), or an event type a "
                                            "communication listens to, e.g. payment.received (sends it at once)"},
                    "customer": {"type": "string", "maxLength": 64, "description": "the customer's external id"},
                    "amount": {"type": "string", "pattern": r"^[+-]?(\d+(\.\d*)?|\.\d+)$", "description": "exact decimal, e.g. 49.90"},
                    "currency": {"type": "string", "description": "ISO 4217, required with an amount"},
                    "occurred_at": {"type": "string", "format": "date-time"},
                    "message_id": {"type": "integer", "description": "the message that caused it; default: the last one sent within the attribution window"},
                    "reference": {"type": "string", "maxLength": 200},
                    "data": {"type": "object"},
                },
            },
            "Triggered": {
                "type": "object",
                "properties": {"duplicate": {"type": "boolean"}, "messages": {"type": "array", "items": {
                    "type": "object", "properties": {"communication": {"type": "string"}, "message_id": {"type": "integer"},
                                                     "channel": {"type": ["string", "null"]}, "state": {"type": "string"},
                                                     "reason": {"type": ["string", "null"]}}}}},
            },
            "Recorded": {
                "type": "object",
                "properties": {"recorded": {"type": "boolean"}, "duplicate": {"type": "boolean"},
                               "event": {"type": ["integer", "null"]}, "message_id": {"type": ["integer", "null"]}},
            },
        },
    },
    "paths": {
        "/events": {
            "post": {
                "summary": "Record a conversion or a payment, or trigger the communications that listen to an event",
                "security": [{"token": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}}},
                "responses": {
                    "201": {"description": "recorded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Recorded"}}}},
                    "202": {"description": "triggered: the messages are being sent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Triggered"}}}},
                    "200": {"description": "seen before: nothing changed", "content": {"application/json": {"schema": {
                        "oneOf": [{"$ref": "#/components/schemas/Recorded"}, {"$ref": "#/components/schemas/Triggered"}]}}}},
                    "400": {"description": "bad input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "401": {"description": "no valid token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                    "422": {"description": "unknown customer or message", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "the OpenAPI document"}}}},
    },
}
