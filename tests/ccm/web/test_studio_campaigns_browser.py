"""A campaign's report in a real browser: at phone width and on a desktop it fits, shows the
variants, the hold-out and the ROI against the budget, draws its charts over the tables, and
is usable from the keyboard."""
from __future__ import annotations

import datetime as dt

from ccm.feedback import save_campaign
from ccm.models import utcnow

from .conftest import PHONE, browser_sign_in, fits
from .test_studio_campaigns import convert, deals  # noqa: F401  (the fixture)


def test_a_marketer_reads_the_campaign_report_on_a_phone_and_a_desktop(served, browser, deals, engine):  # noqa: F811
    convert(engine, "saver", 0.5)
    with engine.db.session() as session:
        save_campaign(session, {"name": "spring-deals", "title": "Spring deals", "owner": "marketer", "communication": "weekly-deals",
                                "channels": ["email", "sms"], "starts_on": (utcnow().date() - dt.timedelta(days=1)).isoformat(),
                                "budget": "2.00", "currency": "USD"}, "marketer")
    for viewport in (PHONE, {"width": 1280, "height": 900}):
        page = browser.new_page(viewport=viewport)
        browser_sign_in(page, served, "marketer")
        page.goto(f"{served}/console/campaigns")
        page.get_by_role("link", name="Spring deals").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{served}/console/campaigns/spring-deals")
        page.locator(".campaign-chart canvas").first.wait_for()  # charts drawn over their tables
        assert fits(page), f"the campaign report is wider than {viewport['width']} px"
        experiment = page.locator(".experiment-result")
        assert experiment.get_by_role("rowheader", name="saver").is_visible()
        assert experiment.get_by_role("rowheader", name="bundle").is_visible()
        assert experiment.get_by_role("rowheader", name="hold-out (got nothing)").is_visible()
        assert "of a budget of 2.00" in page.locator("#money").locator("..").inner_text()
        assert page.locator("#roi").inner_text().endswith("%")
        page.close()
