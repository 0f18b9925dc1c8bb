"""On demand: one communication made for one customer now (a duplicate statement for a
caller, a letter, a confirmation), rendered by the same composition as a run, archived and
recorded as a message (so it is in the customer's history and can be reprinted), and sent
through the channel policy when asked (``ccm.runs.on_demand``)."""
from __future__ import annotations

import base64
import hashlib
from typing import Any

import marshmallow as ma
from flask import g, request
from flask_smorest import Blueprint

from ccm.runs import OnDemandConflict, OnDemandError, on_demand
from ccm.runs.on_demand import FORMATS
from ccm.staff import record
from ccm.web.api.auth import caller, caller_name, engine, require
from ccm.web.api.idempotency import HEADER, idempotent
from ccm.web.api.problems import errors, fail

blueprint = Blueprint("on-demand", __name__, url_prefix="/api/v1/on-demand", description="On-demand communications")

SENDS = "customers:resend"


class OnDemandIn(ma.Schema):
    communication = ma.fields.String(required=True, validate=ma.validate.Length(1, 100),
                                     metadata={"description": "a communication's name (statement, payment-received, ...)"})
    customer = ma.fields.String(required=True, validate=ma.validate.Length(1, 64), metadata={"description": "the customer's external id"})
    send = ma.fields.Boolean(load_default=False, metadata={"description": "send it through the channel policy (needs an "
                                                                          f"{HEADER} and `{SENDS}`); else only render it"})
    form = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.OneOf(tuple(FORMATS)),
                            metadata={"description": "when only rendering: html (the e-mail), pdf (the document) or sms; "
                                                     "by default the document if it has one, else the e-mail"})
    period = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Regexp(r"^[0-9]{4}-(0[1-9]|1[0-2])$"),
                              metadata={"description": "YYYY-MM: the statement of that period (default: the latest)"})
    data = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(1, 64)), values=ma.fields.Raw(allow_none=True),
                          load_default=dict, metadata={"description": "given to the templates as `event` (a confirmation's details)"})
    include_content = ma.fields.Boolean(load_default=False, metadata={"description": "answer with the rendered content"})


class RenderedContent(ma.Schema):
    channel = ma.fields.String(required=True)
    subject = ma.fields.String(allow_none=True, required=True)
    html = ma.fields.String(allow_none=True, required=True)
    text = ma.fields.String(allow_none=True, required=True)
    sms = ma.fields.String(allow_none=True, required=True)
    pdf = ma.fields.String(allow_none=True, required=True, metadata={"description": "the PDF, base64"})
    pages = ma.fields.Integer(allow_none=True, required=True)


class OnDemandOut(ma.Schema):
    message_id = ma.fields.Integer(required=True)
    run_id = ma.fields.Integer(required=True)
    communication = ma.fields.String(required=True)
    customer = ma.fields.String(required=True)
    channel = ma.fields.String(required=True, metadata={"description": "email, print or sms; none when nothing can reach the customer"})
    state = ma.fields.String(required=True, metadata={
        "description": "sent; failed (retried later); pending (the day's on-demand run is paused, or rerouted to a fallback "
                       "channel); deferred (marketing asked for in the customer's quiet hours, or the channel's daily limit "
                       "used up: sent later); suppressed (the policy found no channel, or it was only rendered); dead"})
    reason = ma.fields.String(allow_none=True, required=True)
    duplicate = ma.fields.Boolean(required=True, metadata={"description": "made by an earlier request with this key; nothing done now"})
    archived = ma.fields.Boolean(required=True, metadata={"description": "its PDF is archived: GET /messages/{id}/pdf"})
    content = ma.fields.Nested(RenderedContent, allow_none=True, required=True,
                               metadata={"description": "with include_content, what was rendered now (none for a duplicate)"})


def _content(rendered: Any) -> dict[str, Any] | None:
    if rendered is None:
        return None
    return {"channel": rendered.channel, "subject": rendered.subject, "html": rendered.html, "text": rendered.text,
            "sms": rendered.sms, "pdf": base64.b64encode(rendered.pdf).decode() if rendered.pdf is not None else None,
            "pages": rendered.pages}


@blueprint.post("")
@require(blueprint, "customers:view")
@idempotent(blueprint)
@errors(blueprint, 400, 403, 404, 409, 422)
@blueprint.arguments(OnDemandIn)
@blueprint.response(201, OnDemandOut)
def make(given: dict):  # type: ignore[no-untyped-def]
    """Render one communication for one customer now, archive and record it as a message,
    and send it when `send` is true. Sending needs `customers:resend` as well and an
    `Idempotency-Key`: a retry with the same key sends nothing again, the key with other
    content is 409."""
    key = request.headers.get(HEADER, "").strip()
    if given["send"]:
        if not caller().staff.can(SENDS):
            fail(403, f"this key's account ({caller().staff.name}) lacks the permission {SENDS}", permission=SENDS)
        if not key:
            fail(400, f"sending needs an {HEADER} header", field=HEADER)
    fingerprint = hashlib.sha256(request.get_data(cache=True)).hexdigest()
    try:
        made = on_demand(engine(), given["communication"], given["customer"], actor=caller_name(), send=given["send"],
                         form=given["form"], period=given["period"], data=given["data"],
                         key=f"{g.api_token}:{key}" if key else None, fingerprint=fingerprint)
    except LookupError as exc:
        fail(404, str(exc).strip("'\""))
    except OnDemandConflict as exc:
        fail(409, str(exc), field=HEADER)
    except OnDemandError as exc:
        fail(422, str(exc))
    if not made.duplicate:
        with engine().db.session() as session:
            record(session, caller_name(), "on-demand", "message", str(made.message_id), None, via="api",
                   communication=made.communication, customer=given["customer"], channel=made.channel, state=made.state)
    if made.state == "dead":
        fail(422, f"message {made.message_id}: {made.reason}")
    return {"message_id": made.message_id, "run_id": made.run_id, "communication": made.communication,
            "customer": given["customer"], "channel": made.channel, "state": made.state, "reason": made.reason,
            "duplicate": made.duplicate, "archived": made.archived,
            "content": _content(made.rendered) if given["include_content"] else None}
