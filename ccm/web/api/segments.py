"""Segments: list, create, read, change (a new version when the rule changes), delete one
nothing uses, and their members now: a count and a sample, checked as the studio checks a rule as it is typed."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint
from sqlalchemy import select

from ccm.models.segments import Segment
from ccm.rules import RuleError
from ccm.segments import SegmentError, delete_segment, describe, get_segment, list_segments, live_count, save_segment
from ccm.web.api.auth import caller_name, engine, require
from ccm.web.api.idempotency import idempotent
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("segments", __name__, url_prefix="/api/v1/segments", description="Segments of customers")

NAME = ma.validate.Regexp(r"^[a-z0-9][a-z0-9_\-]{0,99}$")


class SegmentIn(ma.Schema):
    expression = ma.fields.String(required=True, validate=ma.validate.Length(1, 5000),
                                  metadata={"description": 'a rule, e.g. tier == "vip" and balance_due > 500'})
    description = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=500))


class NewSegment(SegmentIn):
    name = ma.fields.String(required=True, validate=NAME)


class SegmentOut(ma.Schema):
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    expression = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    members = ma.fields.Integer(allow_none=True, metadata={"description": "at the last refresh"})
    refreshed_at = ma.fields.String(allow_none=True)


class SegmentDetail(SegmentOut):
    fields = ma.fields.List(ma.fields.String())
    uses_segments = ma.fields.List(ma.fields.String())
    counts = ma.fields.List(ma.fields.Dict())
    versions = ma.fields.List(ma.fields.Dict())
    outcome = ma.fields.String(metadata={"description": "after a change: created, new version or unchanged"})


class CountOut(ma.Schema):
    count = ma.fields.Integer(allow_none=True, required=True)
    capped = ma.fields.Boolean(required=True, metadata={"description": "more than the cap: count is the cap"})
    estimate = ma.fields.Boolean(required=True, metadata={"description": "the database's estimate: counting took too long"})


class SampleArgs(ma.Schema):
    size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(1, 100))


class SampleOut(ma.Schema):
    items = ma.fields.List(ma.fields.Dict(), required=True, metadata={"description": "external_id, name, value_tier, lifecycle_stage"})


def _saved(name: str, body: dict) -> dict[str, Any]:
    with engine().db.session() as session:
        try:
            saved = save_segment(session, name, body["expression"], description=body.get("description"), author=caller_name()[:64])
        except (SegmentError, RuleError) as exc:
            fail(422, str(exc), field="expression" if isinstance(exc, RuleError) else "name")
        return {**describe(session, saved.segment), "outcome": saved.outcome}


def _get(session: Any, name: str) -> Any:
    try:
        return get_segment(session, name)
    except SegmentError as exc:
        fail(404, str(exc), field="name")


@blueprint.get("")
@require(blueprint, "segments:view")
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, page_schema(SegmentOut, "SegmentPage"))
def listing(args: dict):  # type: ignore[no-untyped-def]
    """Every segment by name, with its members at the last refresh; in pages."""
    with engine().db.reader() as session:
        rows = list_segments(session)
    numbered = list(enumerate(rows))[(args["after"] + 1 if args["after"] is not None else 0):]
    result = page(numbered[:args["limit"] + 1], args["limit"], lambda item: item[0])
    result["items"] = [row for _, row in result["items"]]
    return result


@blueprint.post("")
@require(blueprint, "segments:edit")
@idempotent(blueprint)
@errors(blueprint, 409)
@blueprint.arguments(NewSegment)
@blueprint.response(201, SegmentDetail)
def create(body: dict):  # type: ignore[no-untyped-def]
    """Create a segment; its rule is checked (syntax, fields, segments it uses, no cycle)."""
    with engine().db.reader() as session:
        if session.scalar(select(Segment.id).where(Segment.name == body["name"])) is not None:
            fail(409, f"a segment named {body['name']} exists: change it with PUT", field="name")
    return _saved(body["name"], body)


@blueprint.get("/<name>")
@require(blueprint, "segments:view")
@errors(blueprint, 404)
@blueprint.response(200, SegmentDetail)
def get(name: str):  # type: ignore[no-untyped-def]
    """A segment, its counts over time and its versions."""
    with engine().db.reader() as session:
        return describe(session, _get(session, name))


@blueprint.put("/<name>")
@require(blueprint, "segments:edit")
@idempotent(blueprint)
@errors(blueprint, 404)
@blueprint.arguments(SegmentIn)
@blueprint.response(200, SegmentDetail)
def change(body: dict, name: str):  # type: ignore[no-untyped-def]
    """Change a segment's rule (a new version) or description."""
    with engine().db.reader() as session:
        _get(session, name)
    return _saved(name, body)


@blueprint.delete("/<name>")
@require(blueprint, "segments:edit")
@errors(blueprint, 404, 409)
@blueprint.response(204)
def remove(name: str):  # type: ignore[no-untyped-def]
    """Delete a segment that nothing uses (another segment's rule, a decision, the audience of
    a communication, campaign or schedule: 409 names them), with its history; audited."""
    with engine().db.reader() as session:
        _get(session, name)
    try:
        with engine().db.session() as session:
            delete_segment(session, name, actor=caller_name())
    except SegmentError as exc:
        fail(409, str(exc), field="name")
    return None


def _live(name: str, sample: int) -> Any:
    with engine().db.session() as session:
        segment = _get(session, name)
        return live_count(session, segment.expression, segment=name, sample=sample)


@blueprint.get("/<name>/count")
@require(blueprint, "segments:view")
@errors(blueprint, 404)
@blueprint.response(200, CountOut)
def count(name: str):  # type: ignore[no-untyped-def]
    """How many customers the segment's rule selects now (bounded in time)."""
    live = _live(name, 0)
    if live.error is not None:
        fail(422, str(live.error), field="expression")
    return {"count": live.count, "capped": live.capped, "estimate": live.estimate}


@blueprint.get("/<name>/sample")
@require(blueprint, "segments:view")
@errors(blueprint, 404)
@blueprint.arguments(SampleArgs, location="query")
@blueprint.response(200, SampleOut)
def sample(args: dict, name: str):  # type: ignore[no-untyped-def]
    """A few of the customers the segment's rule selects now, in id order."""
    live = _live(name, args["size"])
    if live.error is not None:
        fail(422, str(live.error), field="expression")
    return {"items": live.sample}
