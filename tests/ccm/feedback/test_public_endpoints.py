"""The public endpoints against hostile input (issue 13): clear 4xx answers, JSON problem
details for machines and pages for people, never a crash; size limits before bodies are
read; rate limits on the API and callbacks; signatures bound to their endpoint; security
headers and the Host checked; client addresses through a proxy on waitress and gunicorn."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import create_app
from ccm.feedback import create_token
from ccm.models import Suppression

from .conftest import feedback_settings, free_port, signed

CCM = str(Path(sys.executable).with_name("ccm"))
PROBLEM = "application/problem+json"


def _event(**fields):
    return {"id": "evt-1", "type": "conversion", "customer": "E001", **fields}


def test_machines_get_problem_details_and_people_a_page(campaign):
    app, engine, *_ = campaign
    client = app.test_client()
    auth = {"Authorization": f"Bearer {create_token(engine, 'crm')}"}
    nested = "[" * 100_000 + "]" * 100_000
    cases = [
        (client.post("/api/v1/events", data=nested, headers={**auth, "Content-Type": "application/json"}), 400, "body"),
        (client.post("/api/v1/events", json=_event(occurred_at="0001-01-01T00:00:00+01:00"), headers=auth), 400, "occurred_at"),
        (client.post("/api/v1/events", json=_event(occurred_at="0001-01-01T00:00:00Z"), headers=auth), 400, "occurred_at"),
        (client.post("/api/v1/events", json=_event(message_id=2**70), headers=auth), 400, "message_id"),
        (client.post("/api/v1/events", json=_event(type=" payment.received"), headers=auth), 400, "type"),
        (client.post("/api/v1/events", json=_event(), headers={}), 401, None),
    ]
    for response, status, field in cases:
        assert response.status_code == status and response.mimetype == PROBLEM, response.data[:200]
        assert response.json["status"] == status and response.json["title"] and response.json.get("field") == field
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == PROBLEM and missing.json["title"] == "Not Found"
    wrong_method = client.get("/api/v1/events")
    assert wrong_method.status_code == 405 and wrong_method.mimetype == PROBLEM and "POST" in wrong_method.headers["Allow"]
    page = client.get("/nothing-here")
    assert page.status_code == 404 and page.mimetype == "text/html" and b"Northwind Energy" in page.data


def test_the_same_event_id_with_other_content_is_a_conflict(campaign):
    app, engine, *_ = campaign
    client = app.test_client()
    auth = {"Authorization": f"Bearer {create_token(engine, 'shop')}"}
    first = client.post("/api/v1/events", json=_event(amount="10.00", currency="USD"), headers=auth)
    assert first.status_code == 201
    assert client.post("/api/v1/events", json=_event(currency="USD", amount="10.00"), headers=auth).status_code == 200  # same
    changed = client.post("/api/v1/events", json=_event(amount="99.00", currency="USD"), headers=auth)
    assert changed.status_code == 409 and changed.mimetype == PROBLEM and changed.json["field"] == "id"
    trigger = {"id": "pay-1", "type": "payment.received", "customer": "E001", "amount": "5.00", "currency": "USD"}
    assert client.post("/api/v1/events", json=trigger, headers=auth).status_code == 202
    assert client.post("/api/v1/events", json=trigger, headers=auth).status_code == 200
    assert client.post("/api/v1/events", json={**trigger, "amount": "6.00"}, headers=auth).status_code == 409


def test_bodies_over_the_limit_are_refused_before_they_are_read(make_settings, tmp_path):
    app = create_app(feedback_settings(make_settings, tmp_path, web={"max_body_bytes": 1000}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    client = app.test_client()
    body, headers = signed({"events": [{"id": "x", "type": "reply", "from": "+14155550101", "text": "hello " * 500}]})
    unsigned = client.post("/inbound/sms", data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401 and unsigned.mimetype == PROBLEM  # refused on its headers alone
    large = client.post("/inbound/sms", data=body, headers=headers)
    assert large.status_code == 413 and large.mimetype == PROBLEM
    auth = {"Authorization": f"Bearer {create_token(engine, 'crm')}"}
    api = client.post("/api/v1/events", json=_event(data={"x": "y" * 2000}), headers=auth)
    assert api.status_code == 413 and api.mimetype == PROBLEM
    engine.close()


def test_a_callback_signed_for_one_endpoint_is_refused_by_another(campaign):
    app, *_ = campaign
    client = app.test_client()
    body, headers = signed({"events": [{"id": "r-1", "type": "reply", "from": "+14155550001", "text": "hello"}]}, "sms")
    assert client.post("/inbound/email", data=body, headers=headers).status_code == 401
    assert client.post("/inbound/sms", data=body, headers=headers).json["recorded"] == 1


def test_a_stop_from_something_that_is_no_phone_number_suppresses_nothing(campaign):
    app, engine, *_ = campaign
    body, headers = signed({"events": [{"id": "s-x", "type": "reply", "from": "FREE-PRIZES", "text": "STOP"},
                                       {"id": "s-y", "type": "reply", "from": "+1 (415) 555-9999", "text": "STOP"}]})
    assert app.test_client().post("/inbound/sms", data=body, headers=headers).status_code == 200
    with engine.db.session() as session:
        assert set(session.scalars(select(Suppression.address))) == {"+14155559999"}


def test_the_api_and_callbacks_are_rate_limited(make_settings, tmp_path):
    app = create_app(feedback_settings(make_settings, tmp_path, web={"api_rate_limit": "3/minute", "callback_rate_limit": "2/minute"}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    client = app.test_client()
    one, two = ({"Authorization": f"Bearer {create_token(engine, name)}"} for name in ("one", "two"))
    answers = [client.post("/api/v1/events", json=_event(), headers=one).status_code for _ in range(4)]
    assert answers[:3] == [422, 422, 422] and answers[3] == 429  # no such customer, then over the token's budget
    limited = client.post("/api/v1/events", json=_event(), headers=one)
    assert limited.mimetype == PROBLEM and int(limited.headers["Retry-After"]) > 0
    assert client.post("/api/v1/events", json=_event(), headers=two).status_code == 422  # another token, its own budget
    body, headers = signed({"events": []})
    assert [client.post("/inbound/sms", data=body, headers=headers).status_code for _ in range(3)] == [200, 200, 429]
    engine.close()


def test_security_headers_and_only_our_hosts(make_settings, tmp_path):
    app = create_app(feedback_settings(make_settings, tmp_path, web={"public_url": "https://mail.northwind.example"}))
    client = app.test_client()
    response = client.get("/api/v1/openapi.json", base_url="https://mail.northwind.example")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    spoofed = client.get("/s/abc", base_url="https://evil.example")
    assert spoofed.status_code == 400 and b"evil.example" not in spoofed.data and "Location" not in spoofed.headers
    assert client.get("/api/v1/openapi.json", base_url="http://127.0.0.1").status_code == 200  # loopback is always ours
    plain = create_app(feedback_settings(make_settings, tmp_path / "plain")).test_client().get("/api/v1/openapi.json")
    assert "Strict-Transport-Security" not in plain.headers  # only when the public URL is https
    app.extensions["ccm"].close()


def _get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


SERVERS = {
    "waitress": lambda port: [CCM, "serve", "--port", str(port)],
    "gunicorn": lambda port: [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                              "--threads", "4", "app:create_app()"],
}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_behind_a_proxy_each_client_has_its_own_budget(make_settings, config_file, tmp_path, server):
    """With [web] proxy_hops = 1 the client address comes from X-Forwarded-For, on waitress
    (`ccm serve`) and on gunicorn alike; all the customer pages share one budget per client."""
    if server == "gunicorn" and shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("gunicorn is not installed")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = feedback_settings(make_settings, tmp_path, web={"public_url": base, "port": port, "proxy_hops": 1, "rate_limit": "3/minute"})
    env = dict(os.environ, CCM_CONFIG=str(config_file(settings)))
    subprocess.run([CCM, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=60)
    process = subprocess.Popen(SERVERS[server](port), env=env, cwd=Path(__file__).resolve().parents[3],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"{base}/api/v1/openapi.json", {}) == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, f"{server} did not start"
            time.sleep(0.2)
        alice, bob = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
        answers = [_get(f"{base}/s/nothing", alice), _get(f"{base}/t/c/forged", alice), _get(f"{base}/s/nothing", alice),
                   _get(f"{base}/t/c/forged", alice)]
        assert answers[3] == 429 and 429 not in answers[:3], answers  # one budget for every page, per client
        assert _get(f"{base}/s/nothing", bob) != 429  # another customer behind the same proxy
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_an_expired_form_comes_back_as_the_customer_filled_it_in(campaign):
    import re

    from .conftest import delivered

    app, engine, *_ = campaign
    mail = next(sent for sent in delivered(engine, engine.var_dir).values() if sent.channel == "email")
    path = "/p/" + re.search(r'href="[^"]+/p/([^"]+)"', mail.html).group(1)
    client = app.test_client()
    client.get(path)
    choices = {"frequency": "monthly", "topics": ["news"], "preferred_channel": "sms"}
    stale = client.post(path, data={**choices, "csrf_token": "expired-token"})
    assert stale.status_code == 400 and b"nothing was saved yet" in stale.data
    page = stale.data.decode()
    assert re.search(r'value="monthly"\s+checked', page) and re.search(r'value="news"\s+checked', page)
    assert not re.search(r'value="offers"\s+checked', page) and 'value="sms" selected' in page
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    saved = client.post(path, data={**choices, "csrf_token": fresh})
    assert saved.status_code == 200 and b"Saved. Thank you." in saved.data
    assert saved.headers["Referrer-Policy"] == "same-origin"


def test_customer_pages_speak_the_customers_language(campaign):
    import re

    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    from ccm.models import Customer, Message
    from ccm.web.i18n import TRANSLATIONS

    from .conftest import delivered

    app, engine, *_ = campaign
    mail = next(sent for sent in delivered(engine, engine.var_dir).values() if sent.channel == "email")
    with engine.db.session() as session:
        customer = session.get(Message, mail.message_id).customer
        customer.locale, customer.name = "zh_CN", "\u202eevil"  # a bidi override in the name
    client = app.test_client()
    path = "/p/" + re.search(r'href="[^"]+/p/([^"]+)"', mail.html).group(1)
    page = client.get(path, headers={"Accept-Language": "en"}).data.decode()
    assert '<html lang="zh-Hans">' in page and "我们联系您的方式和频率" in page and "每月最多一次" in page
    assert "<bdi>\u202eevil</bdi>，您好" in page  # isolated: the override cannot reverse the sentence
    assert "Northwind Energy Ltd · 100 Harbour Street" in page  # the company's branding
    unsubscribe = client.get("/u/" + mail.unsubscribe_url.rsplit("/u/", 1)[1]).data.decode()
    assert "退订" in unsubscribe and "电子邮件" in unsubscribe
    with engine.db.session() as session:
        session.get(Customer, customer.id).locale = "en_US"
    assert "How and how often we contact you" in client.get(path).data.decode()
    # Without a customer (a broken link), the browser's language.
    broken = client.get("/t/c/forged", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert broken.status_code == 400 and "此链接无效" in broken.data.decode()
    assert "This link does not work" in client.get("/t/c/forged").data.decode()
    missing = client.get("/nothing", headers={"Accept-Language": "zh-Hans"})
    assert missing.status_code == 404 and "此地址没有内容" in missing.data.decode()
    # The compiled catalogue is the one its .po file says (scripts/translations.sh compile).
    folder = TRANSLATIONS / "zh_Hans" / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as po, (folder / "messages.mo").open("rb") as mo:
        written, compiled = read_po(po), read_mo(mo)
    def entries(catalog):  # plural forms as tuples (their id and translations come as lists)
        plain = lambda value: tuple(value) if isinstance(value, (list, tuple)) else value  # noqa: E731
        return {plain(m.id): plain(m.string) for m in catalog if m.id}

    assert entries(written) == entries(compiled)
    assert all(all(m.string) if isinstance(m.string, (list, tuple)) else m.string for m in written if m.id), \
        "every text of the pages is translated"
