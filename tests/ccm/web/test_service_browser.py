"""The customer service desk in a real browser, at phone width and on a desktop: the
``service`` user finds a customer with the keyboard, withdraws a consent on their behalf
and closes a follow-up task."""
from __future__ import annotations

import re

import pytest

from ccm.feedback import handle_events
from ccm.runs import service

from shared_population import feedback_settings

from .conftest import PHONE, browser_sign_in, fits

DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def settings(make_settings, tmp_path):
    return feedback_settings(make_settings, tmp_path)


@pytest.fixture
def desk(loaded, staff):
    """The six customers with their statements sent, and two SMS replies to follow up."""
    service.run_cycle(loaded, "statement", "2026-11", progress=False)
    handle_events(loaded, "sms", [
        {"type": "reply", "event_id": "r-1", "from": "+14155550102", "text": "Why is my bill so high?"},
        {"type": "reply", "event_id": "r-2", "from": "+8613800138000", "text": "请给我打电话"},
    ])
    return loaded


def follow(page, link, url: str) -> None:  # type: ignore[no-untyped-def]
    """Follow a link and wait until the new page, its stylesheet included, has loaded."""
    link.click()
    page.wait_for_url(re.compile(url))
    page.wait_for_load_state("load")


def test_service_finds_a_customer_withdraws_a_consent_and_closes_a_task(desk, served, browser, tmp_path):
    for viewport, query, external_id in ((PHONE, "alice", "C-EMAIL"), (DESKTOP, "(415) 555-0102", "C-PRINT")):
        page = browser.new_page(viewport=viewport)
        browser_sign_in(page, served, "service")
        follow(page, page.get_by_role("link", name="Customers"), r"/console/customers$")
        page.get_by_label("Id, name, e-mail or phone").fill(query)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"/console/customers\?q="))
        follow(page, page.get_by_role("link", name=external_id), f"/console/customers/{external_id}$")
        assert page.get_by_role("heading", name="Timeline").is_visible()
        assert fits(page), f"the profile is wider than {viewport['width']} px"
        withdraw = page.get_by_role("button", name="Withdraw email marketing consent")
        withdraw.focus()
        page.keyboard.press("Enter")
        page.get_by_role("status").filter(has_text="Consent withdrawn").wait_for()
        assert page.get_by_role("button", name="Give email marketing consent").is_visible()
        assert page.get_by_text("phone: service").first.is_visible()
        page.screenshot(path=str(tmp_path / f"profile-{viewport['width']}.png"), full_page=True)

        follow(page, page.get_by_role("link", name="Follow-ups"), r"/console/tasks$")
        assert fits(page), f"the queue is wider than {viewport['width']} px"
        follow(page, page.get_by_role("link", name=re.compile(r"^#\d+ sms reply")).first, r"/console/tasks/\d+$")
        assert page.get_by_role("heading", name="The customer's history").is_visible()
        assert fits(page), f"a task is wider than {viewport['width']} px"
        page.get_by_role("button", name="Close the task").click()
        page.get_by_role("status").filter(has_text="Task closed.").wait_for()
        assert "closed" in page.get_by_role("region", name="Task").inner_text()
        page.screenshot(path=str(tmp_path / f"task-{viewport['width']}.png"), full_page=True)
        page.close()
