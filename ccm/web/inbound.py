"""Provider callbacks: ``POST /inbound/<channel>`` (``sms`` or ``email``) with a signed JSON
body that the channel's adapter parses (``Channel.parse_inbound``); see the README,
"Inbound callbacks". 401 for a bad signature, 400 for a body the adapter cannot read,
200 with what was recorded otherwise (a callback sent twice records nothing new).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from channels import channel_from_url
from channels.inbound import InboundError
from ccm.feedback.inbound import handle_events
from ccm.feedback.webhooks import SignatureError, verify

blueprint = Blueprint("inbound", __name__, url_prefix="/inbound")


@blueprint.post("/<kind>")
def callback(kind: str):  # type: ignore[no-untyped-def]
    engine = current_app.extensions["ccm"]
    if kind not in ("sms", "email"):
        return jsonify(error=f"no inbound callbacks for {kind!r}: use sms or email"), 404
    body = request.get_data()  # kept for get_json below
    try:
        verify(engine.settings["feedback"]["webhook_secret"], request.headers.get("X-CCM-Timestamp"),
               request.headers.get("X-CCM-Signature"), body)
    except SignatureError as exc:
        return jsonify(error=str(exc)), 401
    payload = request.get_json(force=True, silent=True)
    channel = channel_from_url(engine.settings["channels"][kind])
    try:
        events = channel.parse_inbound(payload if payload is not None else {})
    except NotImplementedError as exc:
        return jsonify(error=str(exc)), 404
    except InboundError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(handle_events(engine, kind, events).to_json())
