"""Cursor pagination of list operations: ``limit`` (1 to ``MAX_LIMIT``) and an opaque
``cursor`` taken from the previous page's ``next_cursor``; the last page has none. A
cursor names the position after the last item (its id), so pages do not shift when rows
are added."""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import marshmallow as ma

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageArgs(ma.Schema):
    limit = ma.fields.Integer(load_default=DEFAULT_LIMIT, validate=ma.validate.Range(1, MAX_LIMIT),
                              metadata={"description": f"items per page, at most {MAX_LIMIT}"})
    cursor = ma.fields.String(load_default=None, validate=ma.validate.Length(max=200),
                              metadata={"description": "next_cursor of the previous page"})

    @ma.post_load
    def _position(self, data: dict, **_: Any) -> dict:
        data["after"] = decode(data.pop("cursor"))
        return data


def encode(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None) -> Any:
    """The position a cursor names (None for the first page); a cursor not made here is a
    validation error of ``cursor``."""
    if not cursor:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        position = None
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise ma.ValidationError("not a cursor of this API", "cursor")
    return position


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The schema of a page of ``item``: ``items`` and ``next_cursor``."""
    return ma.Schema.from_dict({"items": ma.fields.List(ma.fields.Nested(item), required=True),
                                "next_cursor": ma.fields.String(allow_none=True, required=True,
                                                                metadata={"description": "absent on the last page"})},
                               name=name)


def page(items: list[Any], limit: int, position_of: Any) -> dict[str, Any]:
    """A page from ``limit + 1`` items read: the extra one only says there is a next page."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": encode(position_of(items[-1])) if more and items else None}
