"""Public endpoints reached from messages: ``/t/o/<token>.gif`` (open pixel), ``/t/c/<token>``
(click redirect), ``/u/<token>`` (unsubscribe: a page on GET, one click on POST, RFC 8058)
and ``/p/<token>`` (preference centre). A forged, tampered, expired or cross-purpose token
is a 400; ``/s/<code>`` is the short form of a click for paper. Nothing here redirects anywhere but to the URL recorded when the message was sent.
"""
from __future__ import annotations

import base64

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request
from flask_babel import gettext as _

from ccm.feedback import (Hit, PreferenceError, UnknownLink, load_preferences, preferences_as_submitted, record_click, record_open,
                          record_short, save_preferences)
from ccm.feedback import unsubscribe as unsubscribe_by_link
from ccm.links import TokenError
from ccm.web.i18n import speak

blueprint = Blueprint("track", __name__, template_folder="pages")
# One-click unsubscribe on a blueprint of its own: rate limited per client address like the
# rest, mail providers (which send every customer's POST from a few servers) would be refused.
unsubscribe_blueprint = Blueprint("unsubscribe", __name__, template_folder="pages")

def N_(text: str) -> str:
    """Marks a string for the catalogues; translated where it is shown (``_(reason)``)."""
    return text


# Why a link is refused (ccm.links.tokens, ccm.feedback.tracking), shown on the problem page.
REASONS = (N_("this link is not valid"), N_("this link has expired"), N_("no such message"), N_("no such link"),
           N_("no such customer"))

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def _engine():  # type: ignore[no-untyped-def]
    return current_app.extensions["ccm"]


def _hit() -> Hit:
    return Hit(user_agent=request.headers.get("User-Agent", ""), method=request.method)


def _refused(exc: Exception, status: int = 400) -> Response:
    company = current_app.config["CCM"]["company"]["name"]
    page = render_template("web/problem.html", title="This link does not work", reason=str(exc), company=company)
    return Response(page, status=status, headers=NO_STORE)


@blueprint.route("/t/o/<token>.gif", methods=["GET", "HEAD"])
def open_pixel(token: str) -> Response:
    try:
        record_open(_engine(), token, _hit())
    except TokenError:
        abort(400)
    except UnknownLink:
        pass  # a message erased or never sent: still a harmless pixel
    return Response(PIXEL, mimetype="image/gif", headers=NO_STORE)


@blueprint.route("/t/c/<token>", methods=["GET", "HEAD"])
def click(token: str) -> Response:
    return _redirect(record_click, token)


@blueprint.route("/s/<code>", methods=["GET", "HEAD"])
def short_link(code: str) -> Response:
    """A short link printed on a statement (typed in, or from its QR code)."""
    return _redirect(record_short, code)


def _redirect(record, token: str) -> Response:  # type: ignore[no-untyped-def]
    """Record the click and send the customer where the message pointed when it was sent."""
    try:
        url = record(_engine(), token, _hit())
    except TokenError as exc:
        return _refused(exc)
    except UnknownLink as exc:
        return _refused(exc, 404)
    response = redirect(url, code=302)
    response.headers.update(NO_STORE)
    return response


@unsubscribe_blueprint.route("/u/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> Response:
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST
    unsubscribes, with or without the form's body, cookies or a session."""
    engine = _engine()
    company = engine.settings["company"]["name"]
    try:
        channel, locale = unsubscribe_by_link(engine, token, confirm=request.method == "POST")
        speak(locale)
        page = render_template("web/unsubscribed.html" if request.method == "POST" else "web/unsubscribe.html",
                               company=company, channel=channel, token=token)
    except TokenError as exc:
        return _refused(exc)
    except UnknownLink as exc:
        return _refused(exc, 404)
    return Response(page, headers=NO_STORE)


# The preference centre posts to itself: its own origin must get the Referer (CSRF
# protection over HTTPS checks it), other sites never see the tokened URL.
FORM_PAGE = {**NO_STORE, "Referrer-Policy": "same-origin"}


def _submitted() -> dict:
    form = {key: request.form.get(key) for key in ("offers_email", "offers_sms", "paperless", "preferred_channel", "frequency")}
    form["topics"] = request.form.getlist("topics")
    return form


def form_expired(error: Exception) -> Response | None:
    """The preference form came back without a valid CSRF token (open too long, or the
    session cookie gone): show it again as the customer filled it in, with a fresh token,
    instead of losing their changes. None for any other form."""
    if request.endpoint != "track.preference_centre":
        return None
    token = (request.view_args or {}).get("token", "")
    try:
        view = preferences_as_submitted(load_preferences(_engine(), token), _submitted())
    except (TokenError, LookupError) as exc:
        return _refused(exc)
    speak(view.locale)
    problem = _("This page was open for a long time, so nothing was saved yet. Check your choices and save again.")
    page = render_template("web/preferences.html", company=_engine().settings["company"]["name"], view=view, saved=False,
                           problem=problem, token=token)
    return Response(page, status=400, headers=FORM_PAGE)


@blueprint.route("/p/<token>", methods=["GET", "POST"])
def preference_centre(token: str) -> Response:
    engine = _engine()
    company = engine.settings["company"]["name"]
    saved, problem = False, None
    try:
        if request.method == "POST":
            form = _submitted()
            try:
                view = save_preferences(engine, token, form)
                saved = True
            except PreferenceError as exc:
                problem = str(exc)
                view = load_preferences(engine, token)
        else:
            view = load_preferences(engine, token)
    except TokenError as exc:
        return _refused(exc)
    except LookupError as exc:
        return _refused(exc, 404)
    speak(view.locale)
    page = render_template("web/preferences.html", company=company, view=view, saved=saved, problem=problem, token=token)
    return Response(page, status=400 if problem else 200, headers=FORM_PAGE)
