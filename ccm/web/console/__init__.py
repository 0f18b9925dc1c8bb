"""The staff console under ``/console``: sign-in and the desks of billing, scheduling and
customer service, with the dashboard, the audit log and each user's account.

Every view declares the permission it needs with ``@requires("area:action")`` (a test
checks that none is left without); a missing permission is a 403 page, an anonymous
request goes to the sign-in page. Approving, sending, reprinting and erasing also need a
fresh sign-in (``@fresh``). Forms carry a CSRF token; htmx requests send it in a header
(``static/console.js``). Pages render with Flask's autoescaping Jinja environment from
``ccm/web/pages/console``; customer templates never render here (previews show the
sandbox's output in a sandboxed iframe or as PDF).
"""
from __future__ import annotations

import datetime as dt
import functools
import secrets
import time
from typing import Any, Callable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Flask, Response, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user

from ccm.staff import PERMISSIONS, Staff, get_staff, grants
from ccm.wiring import Engine

blueprint = Blueprint("console", __name__, url_prefix="/console", template_folder="../pages",
                      static_folder="../static", static_url_path="static")
login_manager = LoginManager()
PUBLIC = "public"  # the permission of the few views anyone may reach (sign-in, the static files)
SIGNED_IN = "signed-in"  # any signed-in member of staff (the dashboard, their own account)
# Styles from the app, plus a per-request nonce for the <style> elements the vendored editor
# injects (CodeMirror's style-mod; ``csp_nonce()`` in the pages).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-src 'self' blob:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class SignedIn(UserMixin):
    """The signed-in member of staff, as Flask-Login holds them."""

    def __init__(self, staff: Staff) -> None:
        self.staff = staff

    def get_id(self) -> str:
        return str(self.staff.id)

    def can(self, permission: str) -> bool:
        return self.staff.can(permission)


def engine() -> Engine:
    return current_app.extensions["ccm"]


def staff() -> Staff:
    """The signed-in member of staff of this request (views behind ``@requires`` only)."""
    return current_user.staff  # type: ignore[no-any-return]


def requires(permission: str) -> Callable:
    """Declare the permission a view needs: anonymous requests are sent to sign in, staff
    without it get a 403 page (and the refusal is audited)."""
    if permission not in (PUBLIC, SIGNED_IN) and permission not in PERMISSIONS:
        raise ValueError(f"no such permission: {permission}")

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if permission != PUBLIC:
                if not current_user.is_authenticated:
                    return login_manager.unauthorized()
                if permission != SIGNED_IN and not current_user.can(permission):
                    return forbidden(permission)
            return view(*args, **kwargs)

        inner.permission = permission  # type: ignore[attr-defined]
        return inner

    return wrap


def forbidden(permission: str) -> Response:
    from ccm.staff import list_roles

    roles = [role.name for role in list_roles(engine()) if grants(role.permissions, permission)]
    page = render_template("console/forbidden.html", permission=permission, roles=roles)
    return Response(page, status=403)


def is_fresh() -> bool:
    minutes = int(current_app.config["CCM"]["console"]["fresh_minutes"])
    return time.time() - float(session.get("fresh_at", 0)) < minutes * 60


def fresh(view: Callable) -> Callable:
    """The view needs a sign-in (or a password confirmation) of the last ``[console]
    fresh_minutes``; otherwise the user confirms their password and comes back to the page."""

    @functools.wraps(view)
    def inner(*args: Any, **kwargs: Any) -> Any:
        if is_fresh():
            return view(*args, **kwargs)
        back = request.full_path if request.method == "GET" else _same_site(request.referrer) or url_for("console.dashboard")
        target = url_for("console.confirm", next=back)
        return htmx_redirect(target)

    return inner


def _same_site(url: str | None) -> str | None:
    """The path of ``url`` if it points into the console of this site, else None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/console") and not path.startswith("//") else None


def safe_next(url: str | None, default: str = "console.dashboard") -> str:
    """``url`` if it leads into this site's console, else the page of endpoint ``default``."""
    return _same_site(url) or url_for(default)


def htmx_redirect(target: str) -> Response:
    """A redirect that htmx follows with a full page load (a plain one would be swapped in)."""
    if request.headers.get("HX-Request"):
        response = Response(status=204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)  # type: ignore[return-value]


def audit(action: str, object_type: str, name: str, version: int | None = None, **details: Any) -> None:
    """Record an action of the signed-in user in the audit log."""
    from ccm.staff import record

    with engine().db.session() as db:
        record(db, staff().name, action, object_type, name, version, **details)


def viewer_zone() -> ZoneInfo:
    name = current_user.staff.timezone if current_user.is_authenticated else None
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: dt.datetime | None, zone: str | None = None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (naive UTC) or aware time in ``zone`` (default: the viewer's), with the zone's
    abbreviation."""
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    try:
        target = ZoneInfo(zone) if zone else viewer_zone()
    except (ZoneInfoNotFoundError, ValueError):
        target = ZoneInfo("UTC")
    shown = moment.astimezone(target)
    return f"{shown.strftime(fmt)} {shown.tzname()}"


def form_expired(error: Exception) -> Response | None:
    """A console form whose CSRF token is missing or expired: refused (400) with a page that
    says to reload, never acted on."""
    if not request.path.startswith("/console"):
        return None
    page = render_template("console/expired.html", reason=getattr(error, "description", ""))
    return Response(page, status=400)


def init_app(app: Flask) -> None:
    from ccm.web.console import (account, audit_log, billing, dashboard, schedules, service, signin,  # noqa: F401  (routes)
                                 studio_audiences, studio_campaigns, studio_decisions, studio_templates, users, webhooks)

    settings = app.config["CCM"]["console"]
    login_manager.init_app(app)
    login_manager.login_view = "console.signin"
    login_manager.login_message = None  # the sign-in page says what it is
    login_manager.session_protection = "strong"
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_to_sign_in)
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", dt.timedelta(hours=int(settings["session_hours"])))
    app.jinja_env.globals.update(local_time=local_time, permission_names=PERMISSIONS, csp_nonce=csp_nonce)
    app.register_blueprint(blueprint)


def _load_user(user_id: str) -> SignedIn | None:
    started = float(session.get("signed_in_at", 0))
    hours = int(current_app.config["CCM"]["console"]["session_hours"])
    if time.time() - started > hours * 3600:
        return None
    found = get_staff(engine(), int(user_id)) if user_id.isdigit() else None
    if found is None or session.get("epoch") != found.epoch:  # disabled, removed, or its password changed since
        return None
    return SignedIn(found)


def _to_sign_in() -> Response:
    target = url_for("console.signin", next=request.full_path if request.method == "GET" else None)
    return htmx_redirect(target)


@blueprint.before_request
def _before() -> None:
    if current_user.is_authenticated and current_user.staff.locale:
        g.staff_locale = current_user.staff.locale


def csp_nonce() -> str:
    """This response's nonce for the editor's injected styles."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


@blueprint.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
    response.headers.setdefault("Cache-Control", "no-store")
    # Flask-WTF checks the Referer of a form sent over HTTPS: the console's own origin must see it.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Vary"] = "Cookie, HX-Request"
    return response


@blueprint.app_context_processor
def _console_context() -> dict:
    if not request.path.startswith("/console"):
        return {}
    signed = current_user if current_user.is_authenticated else None
    return {"signed_in": signed.staff if signed else None,
            "can": (lambda permission: bool(signed and signed.can(permission))),
            "nav": _nav(signed)}


def _nav(signed: SignedIn | None) -> list[tuple[str, str, str]]:
    """The desks the user may open: (endpoint, label, permission)."""
    if signed is None:
        return []
    desks = [("console.dashboard", _("Dashboard"), None), ("console.runs", _("Billing"), "runs:view"),
             ("console.schedules", _("Schedules"), "schedules:view"), ("console.customers", _("Customers"), "customers:view"),
             ("console.tasks", _("Follow-ups"), "tasks:view"), ("console.audit", _("Audit"), "audit:view"),
             ("console.users", _("Users"), "users:manage"), ("console.webhooks", _("Webhooks"), "webhooks:manage")]
    desks += [("console.templates", _("Templates"), "templates:view"), ("console.segments", _("Segments"), "segments:view"),
              ("console.decisions", _("Decisions"), "decisions:view"), ("console.campaigns", _("Campaigns"), "campaigns:view")]
    return [(endpoint, label, permission or "") for endpoint, label, permission in desks
            if (permission is None or signed.can(permission)) and endpoint in current_app.view_functions]
