"""Fields the API's schemas share."""
from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma


class UtcDateTime(ma.fields.DateTime):
    """A time in UTC, written with its offset (the engine keeps naive UTC times)."""

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)
