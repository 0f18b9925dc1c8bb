"""Provider callbacks: ``POST /inbound/<channel>`` (``sms`` or ``email``) with a signed JSON
body that the channel's adapter parses (``Channel.parse_inbound``); see the README,
"Inbound callbacks". 401 for a bad signature (checked on the raw body, which is never
read beyond ``[web] max_body_bytes``: 413), 400 for a body the adapter cannot read, as
problem details; 200 with what was recorded otherwise (a callback sent twice records
nothing new).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from channels import channel_from_url
from channels.callback_events import InboundError
from ccm.feedback import ApiInputError, SignatureError, check_headers, handle_events, verify
from ccm.web.api.events import json_body
from ccm.web.hardening import problem

blueprint = Blueprint("inbound", __name__, url_prefix="/inbound")


@blueprint.post("/<kind>")
def callback(kind: str):  # type: ignore[no-untyped-def]
    engine = current_app.extensions["ccm"]
    if kind not in ("sms", "email"):
        return problem(404, "Not Found", f"no inbound callbacks for {kind!r}: use sms or email")
    secret, stamp, signature = (engine.settings["feedback"]["webhook_secret"], request.headers.get("X-CCM-Timestamp"),
                                request.headers.get("X-CCM-Signature"))
    try:
        check_headers(secret, stamp, signature)  # before a byte of the body is read
        body = request.get_data(cache=True)  # at most [web] max_body_bytes (413 above it, unread)
        verify(secret, stamp, signature, body, kind)
    except SignatureError as exc:
        return problem(401, "Unauthorized", str(exc))
    try:
        payload = json_body()
    except ApiInputError as exc:
        return problem(400, "Bad Request", exc.reason)
    channel = channel_from_url(engine.settings["channels"][kind])
    try:
        events = channel.parse_inbound(payload)
    except NotImplementedError as exc:
        return problem(404, "Not Found", str(exc))
    except InboundError as exc:
        return problem(400, "Bad Request", str(exc))
    return jsonify(handle_events(engine, kind, events).to_json())
