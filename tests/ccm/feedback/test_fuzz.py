"""Fuzzing the public endpoints (issue 13): the API from its OpenAPI document with
schemathesis (valid and invalid requests, with a valid token and without), and the
customer pages and callbacks with Hypothesis (any path text, any form, any body, signed
or not). Whatever arrives, the answer is never a server error. Bounded: a few dozen
examples per operation, no deadline (the suite runs on two cores)."""
from __future__ import annotations

import json
import time

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from ccm.feedback import create_token
from ccm.feedback.webhooks import sign

from .conftest import WEBHOOK_SECRET

BOUNDED = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])


def test_the_api_never_answers_with_a_server_error(campaign):
    app, engine, *_ = campaign
    auth = {"Authorization": f"Bearer {create_token(engine, 'fuzz')}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert "POST /events" in {operation.label for operation in operations}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for headers in (auth, {}):
                _no_server_error(operation, mode, headers)


def _no_server_error(operation, mode, headers) -> None:
    @BOUNDED
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        response = case.call(headers={**(case.headers or {}), **headers})
        assert response.status_code < 500, (operation.label, mode, case.body, response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert response.headers.get("content-type", [""])[0].startswith("application/problem+json"), response.text[:200]

    run()


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
PATHS = st.sampled_from(["/t/o/{}.gif", "/t/c/{}", "/s/{}", "/u/{}", "/p/{}"])


def test_customer_pages_never_answer_with_a_server_error(campaign):
    app, *_ = campaign
    client = app.test_client()

    @BOUNDED
    @given(path=PATHS, value=TEXT, method=st.sampled_from(["GET", "POST"]),
           form=st.dictionaries(st.sampled_from(["offers_email", "topics", "frequency", "preferred_channel", "csrf_token", "x"]), TEXT,
                                max_size=5))
    def run(path: str, value: str, method: str, form: dict) -> None:
        url = path.format(value.replace("/", "%2F").replace("?", "%3F").replace("#", "%23"))
        response = client.open(url, method=method, data=form if method == "POST" else None)
        assert response.status_code < 500, (url, method, form, response.status_code)

    run()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4), max_leaves=20)
EVENT = st.fixed_dictionaries({"id": TEXT, "type": st.sampled_from(["reply", "delivered", "bounce", "failed", "complaint"]) | TEXT},
                              optional={"from": TEXT, "text": TEXT, "message": TEXT, "permanent": JSON, "at": TEXT, "status": TEXT})


def test_callbacks_never_answer_with_a_server_error(campaign):
    app, *_ = campaign
    client = app.test_client()

    @BOUNDED
    @given(kind=st.sampled_from(["sms", "email", "fax"]), body=st.one_of(JSON, st.fixed_dictionaries({"events": st.lists(EVENT, max_size=3)})),
           signed=st.booleans())
    def run(kind: str, body, signed: bool) -> None:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if signed:
            stamp = int(time.time())
            headers.update({"X-CCM-Timestamp": str(stamp), "X-CCM-Signature": sign(WEBHOOK_SECRET, stamp, data, kind)})
        response = client.post(f"/inbound/{kind}", data=data, headers=headers)
        assert response.status_code < 500, (kind, body, response.status_code, response.data[:300])

    run()
