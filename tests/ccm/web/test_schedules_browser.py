"""The scheduler desk in a real browser: the scheduler adds a schedule through the form,
watching the cron expression checked as it is typed, and finds it in the calendar; at
phone width and on a desktop."""
from __future__ import annotations

import pytest

from .conftest import PHONE, browser_sign_in, fits

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


@pytest.mark.parametrize("viewport", [PHONE, {"width": 1280, "height": 800}], ids=["phone", "desktop"])
def test_the_scheduler_adds_a_schedule_through_the_form_and_sees_it_in_the_calendar(served, browser, viewport, tmp_path):
    name = f"deals-{viewport['width']}"
    page = browser.new_page(viewport=viewport)
    browser_sign_in(page, served, "scheduler")
    page.get_by_role("navigation", name="Desks").get_by_role("link", name="Schedules").click()
    page.get_by_role("link", name="New schedule").click()
    expect(page.get_by_role("heading", name="New schedule")).to_be_visible()

    page.get_by_label("Name").fill(name)
    page.get_by_label("What runs").select_option(label="Campaign")
    page.get_by_label("Communication").select_option(index=1)  # the first campaign
    page.get_by_label("Time zone").fill("Europe/Berlin")
    check = page.locator("#cron-check")
    cron = page.get_by_label("Cron expression")
    cron.press_sequentially("0 25 * * *")  # as typed: the hour is wrong, and the check says where
    expect(check).to_contain_text("Column 3, the hour")
    cron.fill("")
    cron.press_sequentially("30 6 * * 1")
    expect(check).to_contain_text("The next 5 fire times (Europe/Berlin)")
    expect(check.locator("li")).to_have_count(5)
    expect(check.locator(".own-time").first).to_contain_text("06:30 CE")  # CET or CEST, by the season
    assert fits(page), f"the form is wider than {viewport['width']} px"
    page.screenshot(path=str(tmp_path / f"form-{viewport['width']}.png"), full_page=True)

    page.get_by_role("button", name="Add schedule").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{served}/console/schedules/{name}")
    expect(page.get_by_role("status")).to_contain_text(f"Schedule {name} added")
    expect(page.get_by_role("heading", name="Next fire times")).to_be_visible()
    assert fits(page)
    page.screenshot(path=str(tmp_path / f"detail-{viewport['width']}.png"), full_page=True)

    page.get_by_role("link", name="List").click()
    expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    assert fits(page), f"the list is wider than {viewport['width']} px"
    page.screenshot(path=str(tmp_path / f"list-{viewport['width']}.png"), full_page=True)

    page.get_by_role("link", name="Calendar").click()
    page.wait_for_url(f"{served}/console/schedules/calendar")
    entries = page.locator(".calendar").get_by_role("link", name=name)
    expect(entries.first).to_be_visible()
    assert 4 <= entries.count() <= 5  # Mondays from now to the end of the fourth week after this one
    assert fits(page), f"the calendar is wider than {viewport['width']} px"
    page.screenshot(path=str(tmp_path / f"calendar-{viewport['width']}.png"), full_page=True)
    page.close()
