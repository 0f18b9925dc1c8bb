"""Signing in and out, the second factor's step, and the fresh confirmation before
approving, sending, reprinting and erasing."""
from __future__ import annotations

import time

from flask import Response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ccm.staff import confirm_password, sign_in, sign_in_code
from ccm.web.console import PUBLIC, SIGNED_IN, SignedIn, blueprint, engine, requires, safe_next, staff

PENDING_SECONDS = 300  # how long a right password waits for its second factor


def _refusal(reason: str | None) -> str:
    """The sign-in's refusal in the page's language (the engine words it in English)."""
    if reason is None:
        return ""
    if reason.startswith("too many failed sign-ins"):
        return _("Too many failed sign-ins. Your account is locked for a while; an administrator can unlock it.")
    if reason == "wrong code":
        return _("That code is not right. Codes change every 30 seconds.")
    return _("Wrong name or password.")


def _start_session(signed: SignedIn) -> Response:
    back = request.args.get("next") or request.form.get("next")
    session.clear()  # a new session for the new identity (no fixation)
    session.permanent = True
    session["signed_in_at"] = session["fresh_at"] = time.time()
    session["epoch"] = signed.staff.epoch
    login_user(signed)
    return redirect(safe_next(back))


@blueprint.route("/signin", methods=["GET", "POST"])
@requires(PUBLIC)
def signin() -> Response | str:
    if current_user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    error, name = None, ""
    if request.method == "POST":
        name = request.form.get("name", "").strip().lower()[:64]
        outcome = sign_in(engine(), name, request.form.get("password", ""))
        if outcome.needs_code:
            session["pending_signin"] = {"name": name, "at": time.time()}
            return render_template("console/signin_code.html", next=request.form.get("next", ""))
        if outcome.staff is not None:
            return _start_session(SignedIn(outcome.staff))
        error = _refusal(outcome.refused)
    page = render_template("console/signin.html", error=error, name=name, next=request.args.get("next") or request.form.get("next", ""))
    return Response(page, status=401 if error else 200)


@blueprint.route("/signin/code", methods=["POST"])
@requires(PUBLIC)
def signin_code() -> Response | str:
    pending = session.get("pending_signin") or {}
    if not pending or time.time() - float(pending.get("at", 0)) > PENDING_SECONDS:
        session.pop("pending_signin", None)
        return redirect(url_for("console.signin"))
    outcome = sign_in_code(engine(), pending["name"], request.form.get("code", ""))
    if outcome.staff is not None:
        return _start_session(SignedIn(outcome.staff))
    if outcome.refused and outcome.refused.startswith("too many"):
        session.pop("pending_signin", None)
    page = render_template("console/signin_code.html", error=_refusal(outcome.refused), next=request.form.get("next", ""))
    return Response(page, status=401)


@blueprint.route("/signout", methods=["POST"])
@requires(SIGNED_IN)
def signout() -> Response:
    from ccm.web.console import audit

    audit("signout", "user", staff().name)
    logout_user()
    session.clear()
    return redirect(url_for("console.signin"))


@blueprint.route("/confirm", methods=["GET", "POST"])
@requires(SIGNED_IN)
def confirm() -> Response | str:
    """Confirm the password (and code) to do something that needs a fresh sign-in."""
    back = safe_next(request.values.get("next"))
    error = None
    if request.method == "POST":
        if confirm_password(engine(), staff(), request.form.get("password", ""), request.form.get("code") or None):
            session["fresh_at"] = time.time()
            return redirect(back)
        error = _("That is not right. Too many wrong attempts lock your account.")
    page = render_template("console/confirm.html", error=error, next=back)
    return Response(page, status=401 if error else 200)
