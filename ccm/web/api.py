"""The REST API, ``/api/v1``: token-authenticated (``Authorization: Bearer <token>``, made
with ``ccm tokens create NAME``), JSON in and out, described at ``/api/v1/openapi.json``."""
from __future__ import annotations

import functools
import hashlib
import json
from typing import Any, Callable

from flask import Blueprint, current_app, g, jsonify, request

from ccm.feedback import API_TYPES, ApiInputError, authenticate, handle_api_event
from ccm.runs import dispatcher
from ccm.web.hardening import problem

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


def _engine():  # type: ignore[no-untyped-def]
    return current_app.extensions["ccm"]


def rate_key() -> str:
    """Whose budget a request spends: its token's (hashed, never the token itself), else
    its address's."""
    credentials = request.headers.get("Authorization", "").strip()
    if credentials:
        return "token:" + hashlib.sha256(credentials.encode("utf-8", "replace")).hexdigest()[:24]
    return "address:" + (request.remote_addr or "unknown")


def token_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        name = authenticate(_engine(), bearer_token())
        if name is None:
            response = _problem(401, "Unauthorized", "a valid API token is required (Authorization: Bearer <token>)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="ccm"'
            return response
        g.api_token = name
        return view(*args, **kwargs)

    return inner


@blueprint.post("/events")
@token_required
def post_event():  # type: ignore[no-untyped-def]
    try:
        body = json_body()
        outcome = handle_api_event(_engine(), body)
    except ApiInputError as exc:
        status = PROBLEM_STATUS[exc.problem]
        return _problem(status, TITLES[status], exc.reason, field=exc.field)
    for run_id in outcome.runs_to_deliver:  # a triggered message goes out now, not with the next run
        dispatcher(_engine()).submit(run_id)
    return jsonify(outcome.payload), RESULT_STATUS[outcome.result]


TITLES = {400: "Bad Request", 409: "Conflict", 422: "Unprocessable Content"}
PROBLEM_STATUS = {"invalid": 400, "unknown": 422, "conflict": 409}  # ApiInputError.problem
RESULT_STATUS = {"recorded": 201, "triggered": 202, "duplicate": 200}  # ApiOutcome.result


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None
MAX_DEPTH = 32  # nesting of JSON objects and arrays a request may have


def json_body() -> Any:
    """The request's JSON, or ApiInputError: not JSON, or nested deeper than MAX_DEPTH (a
    deeply nested body would exhaust the parser's recursion)."""
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiInputError("body", "must be a JSON object") from None
    if _depth(body) > MAX_DEPTH:
        raise ApiInputError("body", f"is nested deeper than {MAX_DEPTH} levels")
    return body


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _problem(status: int, title: str, detail: str, **extra: Any):  # type: ignore[no-untyped-def]
    """Problem details (RFC 9457), with ``error`` as well (the detail, for clients written
    before) and ``field`` where one field is at fault."""
    return problem(status, title, detail, error=detail, **extra)


@blueprint.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(OPENAPI)


_ERROR = {
    "type": "object",
    "description": "problem details (RFC 9457), as application/problem+json",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "error": {"type": "string", "description": "the detail again"},
                   "field": {"type": "string", "description": "the field at fault"}},
    "required": ["title", "status"],
}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Error"}}}
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
                    "400": {"description": "bad input", "content": _PROBLEM},
                    "401": {"description": "no valid token", "content": _PROBLEM},
                    "409": {"description": "the event id was used before with other content, or for another customer", "content": _PROBLEM},
                    "413": {"description": "the body is larger than [web] max_body_bytes", "content": _PROBLEM},
                    "422": {"description": "unknown customer or message", "content": _PROBLEM},
                    "429": {"description": "over the token's rate limit ([web] api_rate_limit); see Retry-After", "content": _PROBLEM},
                },
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "the OpenAPI document"}}}},
    },
}
