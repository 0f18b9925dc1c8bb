"""The customer's inbox, for the company's website or app: the messages the inbox channel
kept for a customer who signed in there, listed in pages newest first; one read (recorded
as the message's open); archived or moved back. The site calls these with its API key
(permission ``inbox:serve``, the ``website`` role), as it calls the real-time decisions."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint

from ccm.feedback import INBOX_FOLDERS as FOLDERS
from ccm.feedback import InboxError, archive_item, inbox_items, inbox_pdf, read_item, unread_count
from ccm.runs import ArchiveError
from ccm.web.api.auth import engine, require
from ccm.web.api.fields import UtcDateTime
from ccm.web.api.pagination import PageArgs, page, page_schema
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("inbox", __name__, url_prefix="/api/v1/customers", description="The customer's inbox on the website")

ID = "<int(max=2147483647):message_id>"


class InboxArgs(PageArgs):
    folder = ma.fields.String(load_default="inbox", validate=ma.validate.OneOf(FOLDERS),
                              metadata={"description": "inbox (not archived), archived, or all"})


class InboxItemOut(ma.Schema):
    id = ma.fields.Integer(required=True, attribute="message_id")
    communication = ma.fields.String(required=True)
    purpose = ma.fields.String(required=True)
    sent_at = UtcDateTime(required=True)
    read_at = UtcDateTime(allow_none=True, required=True)
    archived_at = UtcDateTime(allow_none=True, required=True)
    subject = ma.fields.String(allow_none=True, required=True)
    preview = ma.fields.String(required=True, metadata={"description": "the start of the text"})
    document = ma.fields.Boolean(required=True, metadata={"description": "a PDF is kept: /customers/{id}/inbox/{message}/pdf"})


class InboxContent(ma.Schema):
    subject = ma.fields.String(allow_none=True, required=True)
    html = ma.fields.String(allow_none=True, required=True, metadata={"description": "to show in a sandboxed frame; links tracked"})
    text = ma.fields.String(required=True)


class InboxMessageOut(InboxItemOut):
    content = ma.fields.Nested(InboxContent, required=True)


class InboxPage(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(InboxItemOut), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
    unread = ma.fields.Integer(required=True, metadata={"description": "unread messages in the inbox folder"})


class ArchiveIn(ma.Schema):
    archived = ma.fields.Boolean(load_default=True, metadata={"description": "false moves it back to the inbox"})


def _or_404(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(engine(), *args, **kwargs)
    except InboxError as exc:
        fail(404, str(exc))


@blueprint.get("/<external_id>/inbox")
@require(blueprint, "inbox:serve")
@errors(blueprint, 404)
@blueprint.arguments(InboxArgs, location="query")
@blueprint.response(200, InboxPage)
def listing(args: dict, external_id: str):  # type: ignore[no-untyped-def]
    """The customer's inbox messages, newest first, in pages, with the unread count."""
    found = _or_404(inbox_items, external_id, folder=args["folder"], after=args["after"], limit=args["limit"] + 1)
    return {**page(found, args["limit"], lambda item: item.message_id), "unread": _or_404(unread_count, external_id)}


@blueprint.get(f"/<external_id>/inbox/{ID}")
@require(blueprint, "inbox:serve")
@errors(blueprint, 404)
@blueprint.response(200, InboxMessageOut)
def read(external_id: str, message_id: int):  # type: ignore[no-untyped-def]
    """One message with its content; the first reading marks it read and is recorded as
    the message's open."""
    return _or_404(read_item, external_id, message_id)


@blueprint.post(f"/<external_id>/inbox/{ID}/archive")
@require(blueprint, "inbox:serve")
@errors(blueprint, 404)
@blueprint.arguments(ArchiveIn, required=False)
@blueprint.response(200, InboxItemOut)
def archive(choice: dict, external_id: str, message_id: int):  # type: ignore[no-untyped-def]
    """Archive the message (it leaves the inbox folder), or with ``archived: false`` move it back."""
    return _or_404(archive_item, external_id, message_id, archived=choice.get("archived", True))


@blueprint.get(f"/<external_id>/inbox/{ID}/pdf")
@require(blueprint, "inbox:serve")
@errors(blueprint, 404, 409)
@blueprint.doc(responses={"200": {"description": "the message's document (the statement) as kept in the archive",
                                  "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def pdf(external_id: str, message_id: int) -> Response:
    """The document of an inbox message (a statement), as archived when it was sent."""
    try:
        data = _or_404(inbox_pdf, external_id, message_id)
    except ArchiveError as exc:
        fail(409, str(exc))
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="message-{message_id}.pdf"'
    return response
