"""Every error of the API as problem details (RFC 9457, ``application/problem+json``):
what views refuse (``fail``), what flask-smorest's argument parsing rejects (422 with the
fields at fault, 400 for a body that is no JSON) and what Flask raises (401, 404, 405,
413, 429). ``errors`` documents them on an operation."""
from __future__ import annotations

from http import HTTPStatus
from typing import Any, Callable, NoReturn

import marshmallow as ma
from flask import Response
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

from ccm.web.hardening import problem

TITLES = {422: "Unprocessable Content", 413: "Content Too Large"}


class FieldProblem(ma.Schema):
    location = ma.fields.String(metadata={"description": "json, query, path or headers"})
    field = ma.fields.String(metadata={"description": "the field at fault, dotted for nested ones"})
    detail = ma.fields.String()


class ProblemSchema(ma.Schema):
    """Problem details (RFC 9457)."""

    type = ma.fields.String(metadata={"description": "about:blank"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    error = ma.fields.String(metadata={"description": "the detail again (for clients written before problem details)"})
    field = ma.fields.String(metadata={"description": "the (first) field at fault"})
    errors = ma.fields.List(ma.fields.Nested(FieldProblem), metadata={"description": "every field at fault (422)"})
    permission = ma.fields.String(metadata={"description": "the permission the caller lacks (403)"})


def title(status: int) -> str:
    return TITLES.get(status) or HTTPStatus(status).phrase


def fail(status: int, detail: str, **extra: Any) -> NoReturn:
    """End the request with a problem: ``status``, a sentence, and fields such as ``field``."""
    abort(status, message=detail, extra=extra)
    raise AssertionError("unreachable")  # abort raises


def _flatten(messages: Any, location: str, prefix: str = "") -> list[dict[str, str]]:
    """webargs' nested error messages as one list of (location, field, detail)."""
    if isinstance(messages, dict):
        found = []
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            found += _flatten(value, location, "" if key == "_schema" else name)
        return found
    if isinstance(messages, list) and all(isinstance(item, str) for item in messages):
        return [{"location": location, "field": prefix or "body", "detail": " ".join(messages)}]
    if isinstance(messages, list):
        return [item for value in messages for item in _flatten(value, location, prefix)]
    return [{"location": location, "field": prefix or "body", "detail": str(messages)}]


def api_error(error: HTTPException) -> Response:
    """The problem details of an error raised while answering an API request."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    extra = dict(data.get("extra") or {})
    detail = data.get("message") or error.description or title(status)
    if "messages" in data:  # webargs: {"json": {"email": ["Not a valid email address."]}, "query": {...}}
        listed = [item for location, messages in data["messages"].items() for item in _flatten(messages, location)]
        if listed:
            extra.setdefault("field", listed[0]["field"])
            extra["errors"] = listed
            detail = "; ".join(f"{item['field']}: {item['detail']}" for item in listed)
    response = problem(status, title(status), detail, error=detail, **extra)
    for name, value in error.get_headers():
        if name in ("Retry-After", "Allow", "WWW-Authenticate"):
            response.headers[name] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ccm"'
    return response


def errors(blueprint: Any, *statuses: int) -> Callable:
    """Document these problem answers on an operation (with 413 and 429, which any may get)."""

    def decorate(view: Callable) -> Callable:
        for status in sorted({*statuses, 413, 429}):
            view = blueprint.alt_response(status, response=HTTPStatus(status).name)(view)
        return view

    return decorate
