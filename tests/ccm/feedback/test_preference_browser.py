"""The preference centre in a real browser (Debian's chromium through Playwright), against
`ccm serve`: a customer follows the link from their e-mail, changes their choices and saves;
then unsubscribes with the button of the unsubscribe page. Skipped where either is absent."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from ccm.models import Consent, Message

from shared_population import wait_for

from .conftest import CAMPAIGN_CYCLE, delivered, feedback_settings, free_port, people, write_people

CCM = str(Path(sys.executable).with_name("ccm"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_a_customer_changes_preferences_and_unsubscribes_in_a_browser(make_settings, config_file, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = feedback_settings(make_settings, tmp_path, web={"public_url": base, "port": port})
    env = dict(os.environ, CCM_CONFIG=str(config_file(settings)))
    for args in (["db", "upgrade"], ["customers", "import", str(write_people(tmp_path / "people.csv", people(4)))],
                 ["run", "deals", "--cycle", CAMPAIGN_CYCLE, "--workers", "1"]):
        subprocess.run([CCM, *args], env=env, check=True, capture_output=True, timeout=120)
    engine = create_app(settings).extensions["ccm"]
    mail = next(sent for sent in delivered(engine, tmp_path / "var").values() if sent.channel == "email")
    preferences = re.search(r'href="([^"]+/p/[^"]+)"', mail.html).group(1)
    server = subprocess.Popen([CCM, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"{base}/api/v1/openapi.json")
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            page.goto(preferences)
            assert page.get_by_role("heading").first.inner_text() == "How and how often we contact you"
            page.get_by_label("Tips").uncheck()
            page.get_by_label("At most once a month").check()
            page.get_by_label("by e-mail instead of paper").check()
            page.get_by_role("button", name="Save").click()
            assert page.get_by_role("status").inner_text() == "Saved. Thank you."
            assert page.get_by_label("At most once a month").is_checked()  # the page shows what was stored
            page.screenshot(path=str(tmp_path / "preferences.png"), full_page=True)

            page.goto(mail.unsubscribe_url)
            page.get_by_role("button", name="Unsubscribe").click()
            assert "You are unsubscribed" in page.get_by_role("heading").inner_text()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    with engine.db.session() as session:
        customer = session.get(Message, mail.message_id).customer
        assert customer.preferences == {"topics": ["offers", "news"], "frequency": "monthly"} and customer.paperless
        marketing = session.scalar(select(Consent).where(Consent.customer_id == customer.id, Consent.channel == "email",
                                                         Consent.purpose == "marketing"))
        assert marketing.granted is False and marketing.source == "track: unsubscribe"
    engine.close()




def test_the_preference_centre_saves_over_https_in_a_browser(make_settings, tmp_path, tls_files):
    """Behind TLS the CSRF protection checks the Referer: the page must let its own origin
    see it (a Referrer-Policy of no-referrer made every save fail with a 400)."""
    import threading

    from werkzeug.serving import make_server

    port = free_port()
    base = f"https://127.0.0.1:{port}"
    settings = feedback_settings(make_settings, tmp_path, web={"public_url": base, "port": port})
    app = create_app(settings)
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    from ccm.imports import import_customers
    from ccm.runs import service

    import_customers(engine.db, write_people(tmp_path / "people.csv", people(4)), rejects_dir=tmp_path, progress=False)
    service.run_cycle(engine, "deals", CAMPAIGN_CYCLE, progress=False)
    mail = next(sent for sent in delivered(engine, tmp_path / "var").values() if sent.channel == "email")
    preferences = re.search(r'href="([^"]+/p/[^"]+)"', mail.html).group(1)
    assert preferences.startswith(base)
    cert, key = tls_files
    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=(str(cert), str(key)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(preferences)
            page.get_by_label("At most once a week").check()
            page.get_by_role("button", name="Save").click()
            assert page.get_by_role("status").inner_text() == "Saved. Thank you."
            browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    with engine.db.session() as session:
        assert session.get(Message, mail.message_id).customer.preferences["frequency"] == "weekly"
    engine.close()
