"""What every public response gets, whatever the view: a size limit on request bodies, the
Host checked against the hosts the app answers for, security headers, and errors in the
caller's language: machines (``/api``, ``/inbound``) get JSON problem details (RFC 9457),
people a page with the company's name. A view's own refusals stay its own; this module
only catches what reaches Flask (404, 405, 413, a bad Host, a bug)."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError

log = logging.getLogger(__name__)

MACHINE_PREFIXES = ("/api/", "/inbound/")
PROBLEM_JSON = "application/problem+json"
# Nothing of ours loads from elsewhere; pages carry their own styles (inline) and no script.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"


def init_app(app: Flask) -> None:
    web = app.config["CCM"]["web"]
    app.config["MAX_CONTENT_LENGTH"] = int(web["max_body_bytes"])
    app.config["MAX_FORM_MEMORY_SIZE"] = int(web["max_body_bytes"])
    app.config["TRUSTED_HOSTS"] = allowed_hosts(web)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, _internal_error)


def allowed_hosts(web: dict) -> list[str]:
    """The Host headers the app answers: the public URL's host, where ``ccm serve`` listens,
    loopback, and ``[web] allowed_hosts``. Any other is refused (400) before a view runs,
    so a spoofed Host never ends up in a link or a redirect."""
    public = urlsplit(web["public_url"]).hostname or ""
    return sorted({public, web["host"], "127.0.0.1", "localhost", "::1", *web["allowed_hosts"]} - {"", "0.0.0.0", "::"})


def for_machines() -> bool:
    return request.path.startswith(MACHINE_PREFIXES) or request.accept_mimetypes.best in ("application/json", PROBLEM_JSON)


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """A JSON problem details answer (RFC 9457)."""
    body = {"type": "about:blank", "title": title, "status": status, **({"detail": detail} if detail else {}), **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response


def http_error(error: HTTPException) -> Response:
    if error.response is not None:  # a view answered already (abort with a response)
        return error.response
    status = error.code or 500
    description = error.description
    if isinstance(error, SecurityError):  # a Host we do not serve: never echo it back
        description = "This site is not served at the address the request named."
    if for_machines():
        response = problem(status, error.name, description)
    else:
        company = current_app.config["CCM"]["company"]["name"]
        title, reason = _for_people(status, error.name)
        page = render_template("web/error.html", company=company, title=title, reason=reason, status=status)
        response = Response(page, status=status, mimetype="text/html")
    for name, value in error.get_headers():
        if name in ("Retry-After", "Allow", "WWW-Authenticate"):
            response.headers[name] = value
    return response


def _for_people(status: int, name: str) -> tuple[str, str]:
    """A short title and sentence a customer can read, in the page's language."""
    said = {
        400: (_("Bad request"), _("We could not understand this request.")),
        404: (_("Not found"), _("There is nothing at this address.")),
        405: (_("Not allowed"), _("This page cannot be used that way.")),
        413: (_("Too large"), _("What was sent is too large.")),
        429: (_("Too many requests"), _("Too many requests came from your address. Please wait a minute and try again.")),
    }
    return said.get(status, (name if status < 500 else _("Something went wrong"), _("Please try again later.")))


def _internal_error(error: Exception) -> Response:
    """A bug: logged with its traceback (never personal data: the request is not logged),
    answered without details."""
    if isinstance(error, HTTPException):
        return http_error(error)
    log.error("%s %s failed: %s", request.method, request.path, type(error).__name__, exc_info=error)
    return http_error(InternalServerError())


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config["CCM"]["web"]["public_url"].startswith("https://"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response
