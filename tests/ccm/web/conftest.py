"""Fixtures of the console's tests: staff of each built-in role, and a test client signed
in as one of them (``console_as("billing")``)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from ccm.staff import create_user

PASSWORD = "correct horse battery"
ROLES = ("admin", "marketer", "approver", "billing", "scheduler", "service", "viewer")


def csrf_of(page: str) -> str:
    """The CSRF token of a console page (its meta tag)."""
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in; returns a CSRF token for its next forms."""
    page = client.get("/console/signin").get_data(as_text=True)
    answer = client.post("/console/signin", data={"name": name, "password": password, "csrf_token": csrf_of(page)})
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return csrf_of(client.get("/console/").get_data(as_text=True))


@pytest.fixture
def staff(engine):
    """One user per built-in role, named after it (``billing`` has the role billing; the
    admin is ``admin-user``)."""
    for role in ROLES:
        create_user(engine, "admin-user" if role == "admin" else role, PASSWORD, [role], actor="test")
    return engine


@pytest.fixture
def console_as(app, staff) -> Callable[[str], tuple[FlaskClient, str]]:
    """``client, csrf = console_as("billing")``: a client signed in as that user."""

    def signed(name: str) -> tuple[FlaskClient, str]:
        client = app.test_client()
        return client, sign_in(client, name)

    return signed


# --------------------------------------------------------------------------- in a real browser


CCM = str(Path(sys.executable).with_name("ccm"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}




@pytest.fixture
def served(settings, staff, config_file) -> Iterator[str]:
    """``ccm serve`` on a free port over the test's database (with its staff); yields the
    base URL."""
    from shared_population import free_port, wait_for

    port = free_port()
    config = config_file({**settings, "web": {**settings.get("web", {}), "public_url": f"http://127.0.0.1:{port}", "port": port}})
    env = dict(os.environ, CCM_CONFIG=str(config))
    server = subprocess.Popen([CCM, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/console/signin")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    """Debian's chromium through Playwright (skipped where either is absent)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def browser_sign_in(page, base: str, name: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the form, with the keyboard."""
    page.goto(f"{base}/console/signin")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/")


def fits(page) -> bool:  # type: ignore[no-untyped-def]
    """Whether the page fits its viewport's width (no sideways scrolling at 390 px), measured
    once the page has loaded (its stylesheet applied: a busy machine may show the content of a
    page just navigated to before its styles, wider than it will be)."""
    page.wait_for_load_state("load")
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
