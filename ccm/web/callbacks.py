"""Provider callbacks: ``POST /inbound/<channel>`` (``sms`` or ``email``) with a signed JSON
body that the channel's adapter parses (``Channel.parse_inbound``); see the README,
"Inbound callbacks". 401 for a bad signature (checked on the raw body, which is never
read beyond ``[web] max_body_bytes``: 413), 400 for a body the adapter cannot read, as
problem details; 200 with what was recorded otherwise (a callback sent twice records
nothing new).

A form post (``application/x-www-form-urlencoded``) without ``X-CCM-Signature`` is a
provider's own signed callback: Twilio's status callbacks and incoming messages, signed
with ``X-Twilio-Signature``, which the channel's adapter checks (``verify_callback``:
``[channels] sms`` with ``preset=twilio``) against the URL the provider called, ``[web]
public_url`` with this request's path and query string (behind a proxy, ``request.url`` is
not that URL). Refused as the JSON is (401, problem details); taken, answered 200 with an
empty TwiML ``<Response/>`` (Twilio sends no reply to an incoming message then).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from channels import channel_from_url
from channels.callback_events import InboundError
from ccm.feedback import ApiInputError, SignatureError, check_headers, handle_events, verify
from ccm.web.api.events import json_body
from ccm.web.hardening import problem

blueprint = Blueprint("inbound", __name__, url_prefix="/inbound")

FORM = "application/x-www-form-urlencoded"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@blueprint.post("/<kind>")
def callback(kind: str):  # type: ignore[no-untyped-def]
    engine = current_app.extensions["ccm"]
    if kind not in ("sms", "email"):
        return problem(404, "Not Found", f"no inbound callbacks for {kind!r}: use sms or email")
    if request.mimetype == FORM and "X-CCM-Signature" not in request.headers:  # (curl -d posts JSON as a form)
        return _provider_form(engine, kind)
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


def _provider_form(engine: Any, kind: str) -> Response:
    """A form callback signed by the provider (Twilio's): the adapter checks the signature."""
    channel = channel_from_url(engine.settings["channels"][kind])
    signature = request.headers.get("X-Twilio-Signature")
    check = getattr(channel, "verify_callback", None)  # the adapters whose provider signs form posts
    if check is None:
        return problem(401, "Unauthorized", f"[channels] {kind} takes no form callbacks: post JSON signed with X-CCM-Signature")
    if not signature:
        return problem(401, "Unauthorized", "missing X-Twilio-Signature")  # before a byte of the body is read
    form = request.form  # at most [web] max_body_bytes (413 above it, unread)
    if not check(_called_url(engine), list(form.items(multi=True)), signature):
        return problem(401, "Unauthorized", "bad signature (X-Twilio-Signature over [web] public_url, path and query "
                                            "with the auth token of [channels] sms, preset twilio)")
    try:
        events = channel.parse_inbound(form.to_dict())  # a field sent twice: its first value
    except InboundError as exc:
        return problem(400, "Bad Request", str(exc))
    handle_events(engine, kind, events)
    return Response(EMPTY_TWIML, mimetype="text/xml")


def _called_url(engine: Any) -> str:
    """The URL the provider called and signed: ``[web] public_url`` with this request's path
    and its query string as sent (still %-escaped)."""
    query = request.query_string.decode("latin-1")
    return engine.settings["web"]["public_url"].rstrip("/") + request.path + (f"?{query}" if query else "")
