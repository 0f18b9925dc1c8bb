"""Messages: one message of the outbox with its state, why it got its content (the
decisions' trace and the template versions used) and what the customer did with it; its
content as sent, from where the engine keeps it (the maildir, the SMS file, the archive);
and its archived PDF."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint
from sqlalchemy import select

from ccm.feedback import archived_pdf, sent_message
from ccm.models.feedback import ResponseEvent
from ccm.runs import ArchiveError, message_view
from ccm.web.api.auth import engine, require
from ccm.web.api.fields import UtcDateTime
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("messages", __name__, url_prefix="/api/v1/messages", description="Messages: state, trace, content as sent")

EVENTS_SHOWN = 200


class MessageArchive(ma.Schema):
    sha256 = ma.fields.String(required=True)
    pages = ma.fields.Integer(required=True)
    size = ma.fields.Integer(required=True)
    pdf_a = ma.fields.Boolean(required=True)


class MessageEvent(ma.Schema):
    type = ma.fields.String(required=True, metadata={"description": "delivered, opened, clicked, bounced, ..."})
    source = ma.fields.String(required=True)
    channel = ma.fields.String(allow_none=True, required=True)
    variant = ma.fields.String(allow_none=True, required=True)
    occurred_at = UtcDateTime(required=True)
    detail = ma.fields.String(allow_none=True, required=True)
    bot = ma.fields.Boolean(required=True)


class MessageOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    run_id = ma.fields.Integer(required=True)
    communication = ma.fields.String(required=True)
    cycle = ma.fields.String(required=True)
    customer = ma.fields.String(required=True, metadata={"description": "the customer's external id"})
    account = ma.fields.String(allow_none=True, required=True)
    channel = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    reason = ma.fields.String(allow_none=True, required=True, metadata={"description": "why suppressed, failed or rerouted"})
    attempts = ma.fields.Integer(required=True)
    created_at = UtcDateTime(required=True)
    sent_at = UtcDateTime(allow_none=True, required=True)
    next_attempt_at = UtcDateTime(allow_none=True, required=True)
    fallback_from = ma.fields.String(allow_none=True, required=True)
    trace = ma.fields.Dict(required=True, metadata={"description": "slot -> the content chosen, the rule, why, experiment and variant"})
    template_versions = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True,
                                       metadata={"description": "template -> version id rendered"})
    artifact_sha256 = ma.fields.String(allow_none=True, required=True)
    pages = ma.fields.Integer(allow_none=True, required=True)
    archived = ma.fields.Nested(MessageArchive, allow_none=True, required=True)
    events = ma.fields.List(ma.fields.Nested(MessageEvent), required=True, metadata={"description": f"the latest {EVENTS_SHOWN}, oldest first"})


class SentContent(ma.Schema):
    id = ma.fields.Integer(required=True)
    channel = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    kept = ma.fields.String(required=True, metadata={"description": "where the content was found, or why it is not kept"})
    subject = ma.fields.String(allow_none=True, required=True)
    html = ma.fields.String(allow_none=True, required=True, metadata={"description": "the e-mail's HTML body as sent"})
    text = ma.fields.String(allow_none=True, required=True, metadata={"description": "the e-mail's text body as sent"})
    sms = ma.fields.String(allow_none=True, required=True)
    archived = ma.fields.Boolean(required=True, metadata={"description": "its PDF is at /messages/{id}/pdf"})


def _view(message_id: int) -> Any:
    with engine().db.reader() as session:
        try:
            view = message_view(session, message_id)
        except LookupError:
            fail(404, f"no such message: {message_id}")
        events = list(session.scalars(select(ResponseEvent).where(ResponseEvent.message_id == message_id)
                                      .order_by(ResponseEvent.occurred_at.desc(), ResponseEvent.id.desc()).limit(EVENTS_SHOWN)))
        external_id = view.customer.external_id
        session.expunge_all()
    return view, external_id, events[::-1]


@blueprint.get("/<int(max=2147483647):message_id>")
@require(blueprint, "runs:view")
@errors(blueprint, 404)
@blueprint.response(200, MessageOut)
def get(message_id: int):  # type: ignore[no-untyped-def]
    """One message: its state, why it got its content (the decisions' trace, the template
    versions), what the archive holds of it and the customer's events on it."""
    view, external_id, events = _view(message_id)
    message = view.message
    return {"id": message.id, "run_id": message.run_id, "communication": view.communication, "cycle": view.cycle,
            "customer": external_id, "account": view.account, "channel": message.channel, "purpose": message.purpose,
            "state": message.state, "reason": message.reason, "attempts": message.attempts, "created_at": message.created_at,
            "sent_at": message.sent_at, "next_attempt_at": message.next_attempt_at, "fallback_from": message.fallback_from,
            "trace": dict(message.decisions or {}), "template_versions": dict(message.template_versions or {}),
            "artifact_sha256": message.artifact_sha256, "pages": message.pages, "archived": view.archived,
            "events": events}


@blueprint.get("/<int(max=2147483647):message_id>/content")
@require(blueprint, "customers:view")
@errors(blueprint, 404)
@blueprint.response(200, SentContent)
def content(message_id: int):  # type: ignore[no-untyped-def]
    """The message as it was sent: the e-mail's subject and bodies, the SMS text, from
    where the engine keeps them (a PDF is at `/messages/{id}/pdf`)."""
    _, external_id, _ = _view(message_id)
    sent = sent_message(engine(), external_id, message_id)
    if sent is None:
        fail(404, f"no such message: {message_id}")
    return {"id": message_id, "channel": sent.channel, "state": sent.state, "kept": sent.kept,
            "subject": sent.subject if sent.email is not None or sent.inbox is not None else None, "html": sent.body("html"), "text": sent.body("plain"),
            "sms": sent.sms, "archived": sent.archived}


@blueprint.get("/<int(max=2147483647):message_id>/pdf")
@require(blueprint, "archive:view")
@errors(blueprint, 404, 409)
@blueprint.doc(responses={"200": {"description": "the archived PDF, byte for byte (its hash checked)",
                                  "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def pdf(message_id: int) -> Response:
    """The message's archived document as it was printed or attached."""
    _, external_id, _ = _view(message_id)
    try:
        data = archived_pdf(engine(), external_id, message_id)
    except ArchiveError as exc:
        fail(404 if "has no archived document" in str(exc) else 409, str(exc))
    if data is None:
        fail(404, f"no such message: {message_id}")
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="message-{message_id}.pdf"'
    return response
