"""The REST API, ``/api/v1``: one module per group of resources, each a flask-smorest
blueprint whose marshmallow schemas both check requests and make the OpenAPI 3.1 document
(``/api/v1/openapi.json``, shown as a page at ``/api/v1/docs``), so the limits the code
enforces are the limits the document states.

Conventions every module follows: ``auth.require`` declares the permission of an
operation; errors are problem details (``problems``); lists are paged by cursor
(``pagination``); POSTs that can send honour ``Idempotency-Key`` (``idempotency``). A new
group of resources is a module with a ``blueprint``, named in ``MODULES``.
"""
from __future__ import annotations

import hashlib
import importlib
from http import HTTPStatus
from typing import Any

from flask import Flask, request
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.spec.plugins import FlaskPlugin
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from ccm.web.api.auth import SECURITY_SCHEMES
from ccm.web.api.problems import ProblemSchema, api_error
from ccm.web.hardening import PROBLEM_JSON, http_error

PREFIX = "/api/v1"
MODULES = ("events", "customers", "segments", "decisions", "templates", "campaigns", "reports", "runs", "messages", "on_demand", "webhooks", "imports", "schedules",
           "inbox", "reference")


class ProblemApi(Api):
    """flask-smorest's Api with errors as problem details, answered by each API blueprint
    (the app's own handler, ``ccm.web.hardening``, answers the rest of the app)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        pass

    def _register_responses(self) -> None:
        for status in HTTPStatus:
            if status >= 400:
                response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
                prepare_response(response, self.spec, PROBLEM_JSON)
                self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "an error, as problem details", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


class RelativePaths(FlaskPlugin):
    """Paths in the document relative to its server, ``/api/v1``."""

    def path_helper(self, rule, operations, parameters, **kwargs):  # type: ignore[no-untyped-def]
        path = super().path_helper(rule, operations, parameters, **kwargs)
        return path[len(PREFIX):] if path.startswith(PREFIX + "/") else path


def rate_key() -> str:
    """Whose budget a request spends: its token's (hashed, never the token itself), else
    its address's."""
    credentials = request.headers.get("Authorization", "").strip()
    if credentials:
        return "token:" + hashlib.sha256(credentials.encode("utf-8", "replace")).hexdigest()[:24]
    return "address:" + (request.remote_addr or "unknown")


def blueprints() -> list[Any]:
    return [importlib.import_module(f"ccm.web.api.{name}").blueprint for name in MODULES]


def init_app(app: Flask, limiter: Any, csrf: Any) -> None:
    """Register the API's blueprints, its document, the rate limit per key and the problem
    details of its errors."""
    app.config.update(API_TITLE="CCM engine API", API_VERSION="1", OPENAPI_VERSION="3.1.0", OPENAPI_URL_PREFIX=PREFIX,
                      OPENAPI_JSON_PATH="openapi.json",
                      API_SPEC_OPTIONS={"servers": [{"url": PREFIX}],
                                        "info": {"description": "Token-authenticated: `Authorization: Bearer <key>`. Errors "
                                                                "are problem details (RFC 9457); lists are paged by cursor."}})
    api = ProblemApi(app, spec_kwargs={"flask_plugin": RelativePaths()})
    app.cli.commands.pop("openapi", None)  # flask-smorest's own command is not part of `ccm`
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    app.extensions["ccm-api"] = api
    limit = app.config["CCM"]["web"]["api_rate_limit"]
    documents = app.blueprints["api-docs"]
    for blueprint in [*blueprints()]:
        for name, schema in getattr(importlib.import_module(blueprint.import_name), "SCHEMAS", {}).items():
            api.spec.components.schema(name, schema)
        limiter.limit(limit, key_func=rate_key)(blueprint)
        csrf.exempt(blueprint)
        if isinstance(blueprint, SmorestBlueprint):
            api.register_blueprint(blueprint)
        else:  # a page made from the document, not part of it
            app.register_blueprint(blueprint)
    limiter.limit(limit, key_func=rate_key)(documents)
    ours = {blueprint.name for blueprint in blueprints()}
    app.register_error_handler(HTTPException, lambda error: api_error(error) if request.blueprint in ours else http_error(error))
