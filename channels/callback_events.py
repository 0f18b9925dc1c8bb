"""Provider callbacks in the engine's documented JSON format (README, "Inbound callbacks").

An adapter whose provider has its own format overrides ``parse_inbound``; the built-in
adapters take this one::

    {"events": [
      {"id": "evt-1", "type": "reply", "from": "+14155550101", "text": "STOP", "at": "2026-11-30T10:00:00Z"},
      {"id": "evt-2", "type": "delivered", "message": "m000000123-0a1b2c3d4e5f"},
      {"id": "evt-3", "type": "bounce", "message": "<m000000124-...@example.com>", "permanent": true, "status": "5.1.1"},
      {"id": "evt-4", "type": "complaint", "message": "m000000125-..."}]}

``message`` is the engine's message reference (the file id, or the Message-ID of an
e-mail, which contains it) or the provider id returned when it was sent. The result is a
list of plain dicts; nothing here knows the engine's records.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

TYPES = {"sms": ("reply", "delivered", "failed"), "email": ("delivered", "bounce", "complaint", "reply")}


class InboundError(ValueError):
    """A callback that is not in the expected format; the message names the event and field."""


def parse_events(payload: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    events = payload.get("events") if isinstance(payload, Mapping) else None
    if not isinstance(events, list):
        raise InboundError('expected {"events": [...]}')
    return [_event(number, item, kind) for number, item in enumerate(events, start=1)]


def _event(number: int, item: Any, kind: str) -> dict[str, Any]:
    where = f"event {number}"
    if not isinstance(item, Mapping):
        raise InboundError(f"{where}: not an object")
    event_id, kind_of = item.get("id"), item.get("type")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 150:
        raise InboundError(f"{where}: id must be a non-empty string of at most 150 characters")
    if kind_of not in TYPES[kind]:
        raise InboundError(f"{where}: type must be one of {', '.join(TYPES[kind])}")
    event: dict[str, Any] = {"event_id": event_id.strip(), "type": kind_of, "at": _time(item.get("at"), where)}
    for name in ("message", "from", "text", "status", "reason"):
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            raise InboundError(f"{where}: {name} must be a string")
        event[name] = value
    if kind_of == "reply" and not (event["from"] and event["text"] is not None):
        raise InboundError(f"{where}: a reply needs from and text")
    if kind_of != "reply" and not event["message"]:
        raise InboundError(f"{where}: a {kind_of} event needs message")
    permanent = item.get("permanent", False)  # a hard bounce (the address is suppressed) only when said so
    if not isinstance(permanent, bool):
        raise InboundError(f"{where}: permanent must be true or false")
    event["permanent"] = permanent
    return event


def _time(value: Any, where: str) -> dt.datetime | None:
    """Naive UTC, or None (the engine then uses the time it was received)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InboundError(f"{where}: at must be an ISO 8601 time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InboundError(f"{where}: at must be an ISO 8601 time, got {value[:40]!r}") from None
    if parsed.tzinfo is None:
        return parsed
    return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
