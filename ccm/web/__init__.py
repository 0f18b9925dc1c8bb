"""The web side of the engine, as Flask blueprints:

- ``track``: the public endpoints customers reach from their messages (open pixel, click
  redirect, one-click unsubscribe, preference centre), rate limited per client;
- ``callbacks``: provider callbacks (SMS replies, delivery receipts, bounces, complaints),
  signed with ``[feedback] webhook_secret``;
- ``api``: the REST API under ``/api/v1`` (flask-smorest, a module per resource group),
  authenticated by keys, with its OpenAPI document and reference page;
- ``console``: the staff console under ``/console`` (sign-in, roles, the desks, the audit log).

Views are thin: they parse input, call one function of ``ccm.feedback`` and answer.
Pages render from ``ccm/web/pages`` with Flask's own (autoescaping) Jinja environment;
customer templates never render here.
"""
from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect

from ccm.keys import secret_key

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    from ccm.web import api, callbacks, console, hardening, i18n, limits_storage, track  # noqa: F401  (limits_storage registers ccm-memory://)

    settings = app.config["CCM"]
    hops = int(settings["web"]["proxy_hops"])
    if hops:  # behind TLS proxies: the client's address and scheme from their X-Forwarded-* headers
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.secret_key = secret_key(settings)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=settings["web"]["public_url"].startswith("https://"))
    hardening.init_app(app)
    i18n.init_app(app)
    csrf.init_app(app)
    limiter = Limiter(get_remote_address, app=app, storage_uri=settings["web"]["rate_limit_storage"], headers_enabled=True,
                      key_prefix="ccm")
    app.cli.commands.pop("limiter", None)  # its maintenance commands are not part of `ccm`
    # One budget per client address for all the customer pages together (not one per route).
    limiter.shared_limit(settings["web"]["rate_limit"], scope="public")(track.blueprint)
    # Mail providers send every one-click unsubscribe from a few servers: not limited per
    # address (a refusal would lose an unsubscribe); each POST carries its own signed token.
    limiter.exempt(track.unsubscribe_blueprint)
    # Machines: the API per token, callbacks per sender address with a budget a provider's
    # few servers fit in.
    limiter.limit(settings["web"]["callback_rate_limit"])(callbacks.blueprint)
    # One-click unsubscribe is a POST from a mail program without cookies (RFC 8058), callbacks and
    # the API come from machines: their tokens and signatures authenticate them, not a session.
    csrf.exempt(track.unsubscribe)
    csrf.exempt(callbacks.blueprint)
    app.register_error_handler(CSRFError, lambda error: track.form_expired(error) or console.form_expired(error)
                               or hardening.http_error(error))
    app.register_blueprint(track.blueprint)
    app.register_blueprint(track.unsubscribe_blueprint)
    app.register_blueprint(callbacks.blueprint)
    api.init_app(app, limiter, csrf)
    console.init_app(app)
    # Guessing passwords across many staff names from one address (the lockout counts per user):
    # one budget for both steps of signing in.
    signin_budget = limiter.shared_limit(settings["console"]["signin_rate_limit"], scope="signin", methods=["POST"])
    for endpoint in ("console.signin", "console.signin_code"):
        app.view_functions[endpoint] = signin_budget(app.view_functions[endpoint])
