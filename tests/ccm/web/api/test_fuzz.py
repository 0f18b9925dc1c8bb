"""schemathesis over the API's own document: valid and invalid requests to every
operation, with a key holding every permission and without one. No answer is a server
error, and every answer agrees with the document (its status codes, content types,
headers and schemas). Bounded: a few dozen examples per operation, no deadline."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)

BOUNDED = settings(max_examples=25, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def test_every_answer_of_the_api_agrees_with_its_document(deals, key_for):
    app, _ = deals
    admin = key_for("admin")
    client = app.test_client()
    client.put("/api/v1/customers/E000", json={"name": "Known"}, headers=admin)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {"PUT /customers/{external_id}", "GET /segments/{name}/count", "POST /events"} <= {op.label for op in operations}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for headers in (admin, {}):
                _agrees(operation, mode, headers)


def _agrees(operation, mode, headers) -> None:
    @BOUNDED
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(headers={**(case.headers or {}), **headers})
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            assert response.headers.get("content-type", [""])[0].startswith("application/problem+json"), response.text[:200]

    run()
