"""Templates and content blocks: list them, read one with its versions, read a version's
source with its ETag; save a draft (a new one, or a change of the open draft) against the
ETag of the version it is based on, checked as it is saved (every problem at its line and
column); submit, approve (never by a maker of the version: the engine's maker-checker) and
reject with a comment; and a preview as the customer sees it (the e-mail's HTML, the PDF,
the SMS with its encoding and segments) for a customer or on sample data, of a stored
version or of a source not saved. The engine checks, stores and audits each step
(``ccm.authoring``, ``ccm.previews``), the caller's account acting."""
from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from flask import Response, request
from flask_smorest import Blueprint
from sqlalchemy import select

from ccm.authoring import (KINDS, MakerChecker, Problem, TemplateStoreError, ValidationFailed, WorkflowError, approve, get_version,
                           list_templates, reject, save_draft, show, submit)
from ccm import field_values
from ccm.imports import checked_statement
from ccm.models import Template
from ccm.previews import PreviewError, email_html, render_bundle, render_source, sms_json
from ccm.web.api.auth import caller, engine, require
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import ProblemSchema, errors, fail
from documents import TemplateProblem

blueprint = Blueprint("templates", __name__, url_prefix="/api/v1/templates", description="Templates, their versions and previews")

MAX_SOURCE = 500_000
FORMATS = {"html": "text/html", "pdf": "application/pdf", "sms": "application/json"}
# The customer's e-mail, shown as it is: no scripts, no requests, framed only by this site.
EMAIL_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; base-uri 'none'; "
             "form-action 'none'; frame-ancestors 'self'; sandbox")
NO_NUL = ma.validate.Regexp(r"^[^\x00]*$", error="no NUL characters")  # PostgreSQL keeps no NUL in text
ETAG_HEADER = {"ETag": {"description": "the version's entity tag, for If-Match", "schema": {"type": "string"}}}


class TemplateOut(ma.Schema):
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    versions = ma.fields.Integer(required=True, metadata={"description": "how many"})
    latest = ma.fields.Integer(required=True, allow_none=True, metadata={"description": "the newest version's number"})
    latest_state = ma.fields.String(required=True, allow_none=True)
    in_effect = ma.fields.Integer(required=True, allow_none=True, metadata={"description": "the approved version runs use now"})


class VersionOut(ma.Schema):
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    state = ma.fields.String(required=True, metadata={"description": "draft, in_review, approved or retired"})
    author = ma.fields.String(required=True)
    approved_by = ma.fields.String(required=True, allow_none=True)
    approved_at = ma.fields.String(required=True, allow_none=True)
    effective_from = ma.fields.String(required=True, allow_none=True)
    created_at = ma.fields.String(required=True, allow_none=True)
    source_sha256 = ma.fields.String(required=True)
    meta = ma.fields.Dict(required=True, allow_none=True)
    etag = ma.fields.String(required=True, metadata={"description": "the ETag its source is served with, for If-Match"})


class TemplateDetail(ma.Schema):
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    versions = ma.fields.List(ma.fields.Nested(VersionOut), required=True, metadata={"description": "oldest first"})


class SourceOut(VersionOut):
    source = ma.fields.String(required=True)


class ProblemOut(ma.Schema):
    template = ma.fields.String(required=True)
    line = ma.fields.Integer(required=True, metadata={"description": "1-based"})
    column = ma.fields.Integer(required=True, metadata={"description": "1-based"})
    message = ma.fields.String(required=True)
    severity = ma.fields.String(required=True, metadata={"description": "error, warning or info"})


class Saved(VersionOut):
    problems = ma.fields.List(ma.fields.Nested(ProblemOut), required=True, metadata={"description": "warnings; errors refuse"})


class TemplateProblems(ProblemSchema):
    """Problem details of a template that fails the checks: each problem with its line and column."""

    problems = ma.fields.List(ma.fields.Nested(ProblemOut), metadata={"description": "every problem found"})


class DraftIn(ma.Schema):
    source = ma.fields.String(required=True, validate=[ma.validate.Length(max=MAX_SOURCE), NO_NUL])
    kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(KINDS),
                            metadata={"description": "a new template's kind (required for a new one)"})
    title = ma.fields.String(load_default=None, validate=[ma.validate.Length(max=200), NO_NUL],
                          metadata={"description": "a new template's title"})


class ApproveIn(ma.Schema):
    comment = ma.fields.String(load_default=None, allow_none=True, validate=[ma.validate.Length(max=500), NO_NUL])
    effective_from = ma.fields.AwareDateTime(load_default=None, allow_none=True,
                                             metadata={"description": "when it takes effect (with its offset); default now"})


class RejectIn(ma.Schema):
    comment = ma.fields.String(required=True, validate=[ma.validate.Length(max=500), ma.validate.Regexp(r"^[^\x00]*[^\s\x00][^\x00]*$", error="a comment, without NUL")],
                               metadata={"description": "what must change"})


def _text(limit: int) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.Length(max=limit))


class GivenAddress(ma.Schema):
    line1, line2, city, region = _text(200), _text(200), _text(100), _text(100)
    postal_code, country = _text(20), _text(2)


class GivenCustomer(ma.Schema):
    """A made-up customer's fields; those not given keep the sample's."""

    external_id = _text(64)
    name = ma.fields.String(validate=ma.validate.Length(1, 200))
    email, phone = _text(254), _text(32)
    locale = ma.fields.String(validate=ma.validate.Length(2, 40), metadata={"description": "en_US, zh-CN ..."})
    timezone = ma.fields.String(validate=ma.validate.Length(1, 64), metadata={"description": "an IANA name: Europe/Paris"})
    paperless = ma.fields.Boolean()
    address = ma.fields.Nested(GivenAddress)
    attributes = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")),
                                values=ma.fields.Raw(allow_none=True))

    @ma.post_load
    def _as_the_import_takes_them(self, data: dict, **_: Any) -> dict:
        """Locale and time zone checked and normalised as the customer import does."""
        try:
            for name, check in (("locale", field_values.locale), ("timezone", field_values.timezone)):
                if name in data:
                    data[name] = check(data[name], name)
        except field_values.FieldError as exc:
            raise ma.ValidationError(exc.reason, exc.field) from None
        return data


class GivenStatementLine(ma.Schema):
    date = ma.fields.String(required=True, metadata={"description": "YYYY-MM-DD, within the period (a few days' grace)"})
    description = ma.fields.String(required=True, validate=ma.validate.Length(1, 500))
    amount = ma.fields.String(required=True, metadata={"description": "a decimal; negative for payments and credits"})


class GivenStatement(ma.Schema):
    """A statement as a line of a JSONL billing feed has it, checked as ``ccm feed import``
    checks it (the balances must add up)."""

    account = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))
    period = ma.fields.String(required=True, metadata={"description": "YYYY-MM"})
    currency = ma.fields.String(required=True, metadata={"description": "ISO 4217"})
    opening_balance = ma.fields.String(required=True)
    closing_balance = ma.fields.String(required=True, metadata={"description": "opening balance + the lines"})
    amount_due = ma.fields.String(required=True)
    due_date = ma.fields.String(required=True, metadata={"description": "YYYY-MM-DD"})
    lines = ma.fields.List(ma.fields.Nested(GivenStatementLine), required=True, validate=ma.validate.Length(max=1000))

    @ma.post_load
    def _as_the_feed_import_takes_it(self, data: dict, **_: Any) -> Any:
        try:
            return checked_statement(data)
        except field_values.FieldError as exc:
            raise ma.ValidationError(exc.reason, exc.field) from None


class GivenData(ma.Schema):
    customer = ma.fields.Nested(GivenCustomer, load_default=None)
    event = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(1, 64)), values=ma.fields.Raw(allow_none=True),
                           load_default=None, metadata={"description": "the triggering event's fields (id, type, amount, data ...)"})
    statement = ma.fields.Nested(GivenStatement, load_default=None,
                                 metadata={"description": "the billing data to show instead of the sample's"})


class PreviewIn(ma.Schema):
    format = ma.fields.String(load_default=None, validate=ma.validate.OneOf(FORMATS),
                              metadata={"description": "html (an e-mail), pdf (a document, or an e-mail's attachment) or sms; "
                                                       "default the template's own"})
    version = ma.fields.Integer(load_default=None, validate=ma.validate.Range(1, 2 ** 31 - 1),
                                metadata={"description": "a stored version; default the newest"})
    source = ma.fields.String(load_default=None, validate=[ma.validate.Length(max=MAX_SOURCE), NO_NUL],
                              metadata={"description": "an unsaved source to render instead of a stored version"})
    customer = ma.fields.String(load_default=None, validate=[ma.validate.Length(1, 64), NO_NUL],
                                metadata={"description": "a customer's external id; none: sample data"})
    cycle = ma.fields.String(load_default=None, validate=ma.validate.Regexp(r"^\d{4}-\d{2}$"),
                             metadata={"description": "the billing cycle of the customer's data (YYYY-MM); default the latest"})
    data = ma.fields.Nested(GivenData, load_default=None,
                            metadata={"description": "instead of a stored customer: the sample data with these fields laid over it"})

    @ma.validates_schema
    def _one_source(self, data: dict, **_: Any) -> None:
        if data.get("version") is not None and data.get("source") is not None:
            raise ma.ValidationError("give a version or a source, not both", "source")
        if data.get("customer") is not None and data.get("data") is not None:
            raise ma.ValidationError("give a customer or data, not both", "data")


class SmsOut(ma.Schema):
    text = ma.fields.String(required=True)
    encoding = ma.fields.String(required=True, metadata={"description": "GSM-7 or UCS-2"})
    segments = ma.fields.Integer(required=True)
    characters = ma.fields.Integer(required=True, metadata={"description": "in the encoding's units"})



def etag_of(version: Any) -> str:
    """A strong entity tag of a version: its number and the hash of its source."""
    return f"v{version.version}-{version.source_hash}"


def _quoted(tag: str) -> str:
    return f'"{tag}"'


def _version_json(version: Any, *, with_source: bool = False) -> dict[str, Any]:
    template = version.template
    data = {"name": template.name, "kind": template.kind, "version": version.version, "state": version.state,
            "author": version.author, "approved_by": version.approved_by, "approved_at": _iso(version.approved_at),
            "effective_from": _iso(version.effective_from), "created_at": _iso(version.created_at),
            "source_sha256": version.source_hash, "meta": version.meta, "etag": _quoted(etag_of(version))}
    if with_source:
        data["source"] = version.source
    return data


def _iso(value: dt.datetime | None) -> str | None:
    return value.replace(tzinfo=dt.timezone.utc).isoformat(timespec="seconds") if value is not None else None


def _version(session: Any, name: str, version: int | None = None) -> Any:
    try:
        return get_version(session, name, version)
    except (LookupError, TemplateStoreError) as exc:
        fail(404, str(exc).strip("'\""), field="version" if version is not None else "name")


def _problems(failed: ValidationFailed) -> None:
    """422 listing every problem of a refused source with its line and column."""
    listed = [problem for problem in failed.problems if problem.severity == "error"] or failed.problems
    fail(422, str(failed), field="source", problems=[problem.to_json() for problem in failed.problems],
         errors=[{"location": "json", "field": "source", "detail": f"line {p.line}, column {p.column}: {p.message}"} for p in listed])


def _who() -> str:
    """The caller as the workflow's maker or checker: its account, whichever of its keys it
    uses, so that two keys of one account are one person to maker-checker."""
    return caller().staff.name


@blueprint.get("")
@require(blueprint, "templates:view")
@blueprint.arguments(PageArgs, location="query")
@blueprint.response(200, page_schema(TemplateOut, "TemplatePage"))
def listing(args: dict):  # type: ignore[no-untyped-def]
    """Every template and content block by name, with its newest version and the version in effect; in pages."""
    with engine().db.reader() as session:
        rows = list_templates(session)
    numbered = list(enumerate(rows))[(args["after"] + 1 if args["after"] is not None else 0):]
    result = page(numbered[:args["limit"] + 1], args["limit"], lambda item: item[0])
    result["items"] = [row for _, row in result["items"]]
    return result


@blueprint.get("/<path:name>")
@require(blueprint, "templates:view")
@errors(blueprint, 404)
@blueprint.response(200, TemplateDetail)
def get(name: str):  # type: ignore[no-untyped-def]
    """A template and its versions (without their sources)."""
    with engine().db.reader() as session:
        newest = _version(session, name)
        template = newest.template
        return {"name": template.name, "kind": template.kind, "title": template.title,
                "versions": [_version_json(version) for version in template.versions]}


@blueprint.get("/<path:name>/versions/<int(max=2147483647):version>")
@require(blueprint, "templates:view")
@errors(blueprint, 404)
@blueprint.response(200, SourceOut, headers=ETAG_HEADER)
def version(name: str, version: int):  # type: ignore[no-untyped-def]
    """A version with its source, and its ETag: send it back as If-Match to save a draft based on it."""
    with engine().db.reader() as session:
        found = _version(session, name, version)
        return _version_json(found, with_source=True), 200, {"ETag": _quoted(etag_of(found))}


def _precondition(newest: Any) -> None:
    """If-Match must name the newest version (else someone saved since: 412); without it 428."""
    if newest is None:
        if request.headers.get("If-Match") is not None:
            fail(412, "If-Match names a version, but this template has none yet: create it without If-Match", field="If-Match")
        return
    if request.headers.get("If-Match") is None:
        fail(428, f"send If-Match with the ETag of the version the draft is based on (the newest: {_quoted(etag_of(newest))})",
             field="If-Match")
    if not request.if_match.contains(etag_of(newest)):
        fail(412, f"If-Match does not name the newest version of {newest.template.name} (v{newest.version}, "
                  f"{_quoted(etag_of(newest))}): read it and base the draft on it", field="If-Match")


@blueprint.put("/<path:name>/draft")
@require(blueprint, "templates:edit")
@blueprint.doc(parameters=[{"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string", "maxLength": 200},
                            "description": "the ETag of the newest version, the one the draft is based on; required unless "
                                           "the template is new"}])
@errors(blueprint, 400, 409, 412, 428)
@blueprint.alt_response(422, schema=TemplateProblems, content_type="application/problem+json",
                        description="the source fails the checks: each problem with its line and column")
@blueprint.arguments(DraftIn)
@blueprint.response(200, Saved, headers=ETAG_HEADER, description="the open draft changed")
@blueprint.alt_response(201, schema=Saved, headers=ETAG_HEADER, description="a new draft", success=True)
def save(body: dict, name: str):  # type: ignore[no-untyped-def]
    """Save a draft: into the open draft when the newest version is one, else as a new draft
    (of a new template with ``kind``). Checked as it is saved: a source with errors is not
    stored, and 422 lists each problem at its line and column."""
    try:
        with engine().db.session() as session:
            session.scalar(select(Template.id).where(Template.name == name).with_for_update())
            try:
                newest = get_version(session, name)
            except LookupError:
                newest = None
            _precondition(newest)
            if newest is None and body["kind"] is None:
                fail(422, f"{name} is a new template: give its kind", field="kind")
            into = newest.version if newest is not None and newest.state == "draft" else None
            saved = save_draft(session, engine().settings, name, body["source"], _who(), kind=body["kind"], title=body["title"],
                               version=into)
            data = {**_version_json(get_version(session, name, saved.version)), "problems": [p.to_json() for p in saved.problems]}
    except ValidationFailed as failed:
        _problems(failed)
    except (WorkflowError, TemplateStoreError) as refused:
        fail(409, str(refused), field="source")
    return data, 200 if into else 201, {"ETag": data["etag"]}


def _step(name: str, version: int, action: Any) -> dict[str, Any]:
    """Run a workflow step on a version; the engine's refusals as problems."""
    try:
        with engine().db.session() as session:
            _version(session, name, version)
            problems: list[Problem] = action(session) or []
            return {**_version_json(get_version(session, name, version)),
                    "problems": [p.to_json() for p in problems if isinstance(p, Problem)]}
    except ValidationFailed as failed:
        _problems(failed)
    except MakerChecker as refused:
        fail(403, str(refused), field="version")
    except WorkflowError as refused:
        fail(409, str(refused), field="version")
    except TemplateStoreError as refused:
        fail(409, str(refused), field="version")
    raise AssertionError("unreachable")


def _workflow(view: Any) -> Any:
    view = errors(blueprint, 400, 404, 409)(view)
    return blueprint.alt_response(422, schema=TemplateProblems, content_type="application/problem+json",
                                  description="the version fails the checks: each problem with its line and column")(view)


@blueprint.post("/<path:name>/versions/<int(max=2147483647):version>/submit")
@require(blueprint, "templates:submit")
@_workflow
@blueprint.response(200, Saved)
def submit_version(name: str, version: int):  # type: ignore[no-untyped-def]
    """Submit a draft for review (checked again); another person approves it."""
    return _step(name, version, lambda session: submit(session, engine().settings, name, version, _who()))


@blueprint.post("/<path:name>/versions/<int(max=2147483647):version>/approve")
@require(blueprint, "templates:approve")
@_workflow
@blueprint.arguments(ApproveIn)
@blueprint.response(200, Saved)
def approve_version(body: dict, name: str, version: int):  # type: ignore[no-untyped-def]
    """Approve a version in review; it takes effect at ``effective_from`` (default now). A maker
    of the version (its author, an editor, its submitter) is refused with 403."""
    moment = body["effective_from"]
    try:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment is not None else None
    except OverflowError:
        fail(422, "effective_from is out of range", field="effective_from")

    def run(session: Any) -> None:
        approve(session, engine().settings, name, version, _who(), effective_from=moment, comment=body["comment"])

    return _step(name, version, run)


@blueprint.post("/<path:name>/versions/<int(max=2147483647):version>/reject")
@require(blueprint, "templates:approve")
@_workflow
@blueprint.arguments(RejectIn)
@blueprint.response(200, Saved)
def reject_version(body: dict, name: str, version: int):  # type: ignore[no-untyped-def]
    """Send a version in review back to draft, with the comment saying what must change."""
    def run(session: Any) -> None:
        reject(session, name, version, _who(), body["comment"])

    return _step(name, version, run)


def _render(name: str, body: dict) -> Any:
    options = {"customer": body["customer"], "cycle": body["cycle"], "sample": body["customer"] is None, "given": body["data"]}
    try:
        if body["source"] is None:
            return render_bundle(engine(), name, version=body["version"], **options)
        return render_source(engine(), name, body["source"], **options)
    except (LookupError, TemplateStoreError) as exc:
        fail(404, str(exc).strip("'\""), field="version" if body["version"] is not None else "name")
    except (PreviewError, TemplateProblem) as exc:
        fail(422, str(exc), field="customer" if str(exc).startswith(("no such customer", "customer ")) else "source")


@blueprint.post("/<path:name>/preview")
@require(blueprint, "templates:view")
@errors(blueprint, 400, 404, 422)
@blueprint.arguments(PreviewIn)
@blueprint.doc(responses={"200": {"description": "the preview: the e-mail's HTML, the PDF, or the SMS with its encoding and segments",
                                  "content": {"text/html": {"schema": {"type": "string"}},
                                              "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                                              "application/json": {"schema": SmsOut}}}})
def preview(body: dict, name: str) -> Response:
    """Render a version (default the newest, drafts included) or an unsaved source as the
    customer will see it, for a customer or on sample data, through the documents' sandbox."""
    bundle = _render(name, body)
    own = "html" if bundle.email is not None else "sms" if bundle.sms is not None else "pdf"
    wanted = body["format"] or own
    if wanted == "html" and bundle.email is not None:
        response = Response(email_html(bundle, engine().settings), mimetype="text/html")
        response.headers["Content-Security-Policy"] = EMAIL_CSP
    elif wanted == "pdf" and bundle.pdf is not None:
        response = Response(bundle.pdf, mimetype="application/pdf")
        response.headers["Content-Disposition"] = "inline; filename=preview.pdf"
    elif wanted == "sms" and bundle.sms is not None:
        response = Response(SmsOut().dumps(sms_json(bundle.sms)), mimetype="application/json")
    else:
        fail(422, f"{name} renders no {wanted}; ask for {own}", field="format")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
