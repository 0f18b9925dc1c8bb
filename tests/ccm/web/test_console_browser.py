"""The console's doors in a real browser: sign in with the keyboard, see only one's desks,
sign out; at phone width and on a desktop."""
from __future__ import annotations

from .conftest import PHONE, browser_sign_in, fits


def test_staff_sign_in_with_the_keyboard_and_see_their_desks(served, browser, tmp_path):
    for viewport in (PHONE, {"width": 1280, "height": 800}):
        page = browser.new_page(viewport=viewport)
        page.goto(f"{served}/console/runs")
        assert "/console/signin" in page.url  # anonymous: sent to sign in
        browser_sign_in(page, served, "service")
        assert page.get_by_role("heading", name="Dashboard").is_visible()
        desks = page.get_by_role("navigation", name="Desks").inner_text()
        assert "Customers" in desks and "Follow-ups" in desks and "Audit" not in desks
        assert fits(page), f"the dashboard is wider than {viewport['width']} px"
        page.screenshot(path=str(tmp_path / f"dashboard-{viewport['width']}.png"), full_page=True)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{served}/console/signin")
        page.close()
