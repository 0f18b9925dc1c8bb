"""A user's own account: the console's language and time zone, the password, and the TOTP
second factor (enrolled by scanning a QR code and confirming one code)."""
from __future__ import annotations

import io
import time
from zoneinfo import available_timezones

import segno
from flask import Response, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from ccm.staff import UserError, confirm_password, confirm_totp, get_staff, set_password, set_preferences, start_totp, totp_uri
from ccm.web.console import SIGNED_IN, blueprint, engine, requires, staff
from ccm.web.i18n import LANGUAGES

ZONES = sorted(available_timezones())


@blueprint.route("/account")
@requires(SIGNED_IN)
def account() -> str:
    return render_template("console/account.html", languages=LANGUAGES, zones=ZONES)


@blueprint.route("/account/settings", methods=["POST"])
@requires(SIGNED_IN)
def account_settings() -> Response:
    locale = request.form.get("locale") or None
    zone = request.form.get("timezone") or None
    if locale not in (None, *LANGUAGES) or zone not in (None, *ZONES):
        flash(_("Choose a language and a time zone from the lists."), "error")
    else:
        set_preferences(engine(), staff().id, locale=locale, timezone=zone)
        flash(_("Saved."))
    return redirect(url_for("console.account"))


@blueprint.route("/account/password", methods=["POST"])
@requires(SIGNED_IN)
def account_password() -> Response:
    me = staff()
    if not confirm_password(engine(), me, request.form.get("current", ""), request.form.get("code") or None):
        flash(_("Your current password is not right."), "error")
    elif request.form.get("new") != request.form.get("again"):
        flash(_("The two new passwords differ."), "error")
    else:
        try:
            set_password(engine(), me.name, request.form.get("new", ""), actor=me.name)
            changed = get_staff(engine(), me.id)
            session["epoch"] = changed.epoch if changed else ""  # this session goes on; any other one ends
            flash(_("Your password is changed. Other sessions of yours have ended."))
        except UserError as exc:
            flash(str(exc), "error")
    return redirect(url_for("console.account"))


@blueprint.route("/account/totp", methods=["GET", "POST"])
@requires(SIGNED_IN)
def account_totp() -> Response | str:
    """Enrol a second factor: a secret kept in the session until a code made from it is
    confirmed."""
    me = staff()
    if request.method == "POST":
        secret = session.get("totp_enrol")
        if secret and confirm_totp(engine(), me, secret, request.form.get("code", "")):
            session.pop("totp_enrol", None)
            session["fresh_at"] = time.time()
            flash(_("Your second factor is on. Sign-ins now ask for a code."))
            return redirect(url_for("console.account"))
        flash(_("That code is not right. Codes change every 30 seconds."), "error")
    secret = session.get("totp_enrol") or start_totp(engine(), me)
    session["totp_enrol"] = secret
    uri = totp_uri(secret, me.name, engine().settings["company"]["name"])
    svg = io.BytesIO()
    segno.make(uri, error="m").save(svg, kind="svg", scale=5, xmldecl=False, svgns=True, title=_("QR code of your second factor"))
    return render_template("console/totp.html", secret=secret, qr=Markup(svg.getvalue().decode("utf-8")))
