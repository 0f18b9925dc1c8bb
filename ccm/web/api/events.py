"""``POST /events``: conversions and payments recorded as responses, or the events that
trigger communications (``payment.received``), sent at once. Idempotent on the event's own
``id``; its body is checked by ``ccm.feedback`` (400 with the field at fault)."""
from __future__ import annotations

import json
from typing import Any

from flask import jsonify, request
from flask_smorest import Blueprint

from ccm.feedback import API_TYPES, ApiInputError, event_outcome, handle_api_event
from ccm.runs import dispatcher
from ccm.web.api.auth import engine, require
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("events", __name__, url_prefix="/api/v1", description="Events from other systems")

TITLES = {400: "Bad Request", 409: "Conflict", 422: "Unprocessable Content"}
PROBLEM_STATUS = {"invalid": 400, "unknown": 422, "conflict": 409}  # ApiInputError.problem
RESULT_STATUS = {"recorded": 201, "triggered": 202, "duplicate": 200}  # ApiOutcome.result
MAX_DEPTH = 32  # nesting of JSON objects and arrays a request may have

SCHEMAS: dict[str, dict[str, Any]] = {
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
    "EventOutcome": {
        "type": "object",
        "required": ["id", "type", "result", "messages"],
        "properties": {
            "id": {"type": "string"}, "type": {"type": ["string", "null"]},
            "result": {"type": "string", "enum": ["recorded", "triggered"]},
            "occurred_at": {"type": "string", "format": "date-time", "description": "recorded: when it happened; triggered: when it was taken"},
            "amount": {"type": ["string", "null"]}, "currency": {"type": ["string", "null"]},
            "message_id": {"type": ["integer", "null"], "description": "recorded: the message it was attributed to"},
            "communication": {"type": ["string", "null"], "description": "recorded: that message's communication"},
            "messages": {"type": "array", "description": "triggered: each message and its state now", "items": {
                "type": "object", "properties": {"communication": {"type": "string"}, "message_id": {"type": "integer"},
                                                 "channel": {"type": ["string", "null"]}, "state": {"type": "string"},
                                                 "reason": {"type": ["string", "null"]},
                                                 "sent_at": {"type": ["string", "null"], "format": "date-time"}}}},
        },
    },
    "Recorded": {
        "type": "object",
        "properties": {"recorded": {"type": "boolean"}, "duplicate": {"type": "boolean"},
                       "event": {"type": ["integer", "null"]}, "message_id": {"type": ["integer", "null"]}},
    },
}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


@blueprint.post("/events")
@require(blueprint, "events:record", events_token=True)
@errors(blueprint, 400, 409, 422)
@blueprint.doc(
    summary="Record a conversion or a payment, or trigger the communications that listen to an event",
    requestBody={"required": True, "content": _json("Event")},
    responses={
        "201": {"description": "recorded", "content": _json("Recorded")},
        "202": {"description": "triggered: the messages are being sent", "content": _json("Triggered")},
        "200": {"description": "seen before: nothing changed", "content": {"application/json": {"schema": {
            "oneOf": [{"$ref": "#/components/schemas/Recorded"}, {"$ref": "#/components/schemas/Triggered"}]}}}},
    })
def post_event():  # type: ignore[no-untyped-def]
    try:
        outcome = handle_api_event(engine(), json_body())
    except ApiInputError as exc:
        fail(PROBLEM_STATUS[exc.problem], exc.reason, field=exc.field)
    for run_id in outcome.runs_to_deliver:  # a triggered message goes out now, not with the next run
        dispatcher(engine()).submit(run_id)
    return jsonify(outcome.payload), RESULT_STATUS[outcome.result]


@blueprint.get("/events/<path:event_id>")
@require(blueprint, "events:record", events_token=True)
@errors(blueprint, 404)
@blueprint.doc(summary="What an event did, as it stands now: recorded, or the messages it triggered and their state",
               responses={"200": {"description": "the event", "content": _json("EventOutcome")}})
def get_event(event_id: str):  # type: ignore[no-untyped-def]
    outcome = event_outcome(engine(), event_id)
    if outcome is None:
        fail(404, f"no event with id {event_id!r}", field="id")
    outcome["occurred_at"] = _utc(outcome["occurred_at"])
    for message in outcome["messages"]:
        message["sent_at"] = _utc(message["sent_at"])
    return jsonify(outcome)


def _utc(moment: Any) -> str | None:
    return moment.isoformat() + "Z" if moment is not None else None


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
