"""The rendered message the inbox and webhook channels take, ``{"subject", "text", "html"}``,
and the compact JSON they store or send it as."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import DeliveryResult, Outbound


def rendered_problem(out: Outbound) -> str | None:
    """Why ``out`` cannot go as a rendered message; None when it can."""
    if not out.to:
        return "no recipient (the customer's id)"
    content = out.content
    if not isinstance(content, Mapping):
        return "content is not a rendered message (subject, text, html)"
    if not isinstance(content.get("text"), str):
        return "content has no text"
    for key in ("subject", "html"):
        if content.get(key) is not None and not isinstance(content[key], str):
            return f"content {key} is not text"
    return None


def encoded(record: dict[str, Any], max_body: int | None, what: str) -> bytes | DeliveryResult:
    """``record`` (the message as kept or sent) as compact JSON, or the permanent failure
    when its content or meta cannot be JSON or it is larger than ``max_body``."""
    try:
        data = compact_json(record)
    except (TypeError, ValueError) as exc:
        return DeliveryResult("permanent", detail=f"content or meta cannot be JSON ({type(exc).__name__})")
    if max_body is not None and len(data) > max_body:
        return DeliveryResult("permanent", detail=f"{what} larger than {max_body} bytes")
    return data


def compact_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON; TypeError or ValueError for what JSON cannot hold
    (an object, NaN, a lone surrogate)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
