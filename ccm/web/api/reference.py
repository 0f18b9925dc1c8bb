"""``/api/v1/docs``: the API's reference as one server-rendered page, made from the same
OpenAPI document as ``/api/v1/openapi.json`` (no script, nothing loaded from elsewhere)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

blueprint = Blueprint("api_reference", __name__, url_prefix="/api/v1", template_folder="../pages")

LIMITS = ("format", "minLength", "maxLength", "minimum", "maximum", "pattern", "enum", "minItems", "maxItems")


def describe(schema: dict[str, Any] | None) -> str:
    """A schema in a few words: its type or the schema it names, and its limits."""
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in schema:
        return " or ".join(describe(item) for item in schema["oneOf"])
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array":
        kind = f"array of {describe(schema.get('items')) or 'any'}"
    limits = [f"{name} {schema[name]}" for name in LIMITS if name in schema]
    return kind + (f" ({', '.join(str(limit) for limit in limits)})" if limits else "")


@blueprint.get("/docs")
def reference():  # type: ignore[no-untyped-def]
    spec = current_app.extensions["ccm-api"].spec.to_dict()
    return render_template("api/reference.html", spec=spec, describe=describe)
