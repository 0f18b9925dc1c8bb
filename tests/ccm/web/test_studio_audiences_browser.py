"""The segment editor in a real browser: a marketer types a rule and the live count
follows (the error at its position while the rule is wrong), at phone width and on a
desktop; the audience page draws its charts over its tables."""
from __future__ import annotations

from ccm.imports import import_customers
from ccm.segments import refresh_computed
from shared_population import people, write_people

from .conftest import PHONE, browser_sign_in, fits
from .test_studio_audiences import spend


def test_a_marketer_types_a_rule_and_sees_the_live_count(served, browser, engine, tmp_path):
    import_customers(engine.db, write_people(tmp_path / "people.csv", people(20)), rejects_dir=tmp_path, progress=False)
    spend(engine, "2026-10", {f"E{i:03d}": 10 * (i + 1) for i in range(20)})
    with engine.db.session() as session:
        refresh_computed(session, engine.settings)
    for viewport in (PHONE, {"width": 1280, "height": 900}):
        page = browser.new_page(viewport=viewport)
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        browser_sign_in(page, served, "marketer")
        page.goto(f"{served}/console/segments/new")
        rule = page.get_by_label("Rule")
        rule.click()
        page.keyboard.type("spend > 150")
        status = page.locator("#segment-check .live-count")
        status.filter(has_text="5 customers now").wait_for()
        assert page.locator("#segment-check table.sample tbody tr").count() == 5
        page.keyboard.press("Backspace")  # spend > 15
        status.filter(has_text="19 customers now").wait_for()
        page.keyboard.type("0 and tierr")
        page.locator("#segment-check .rule-error").filter(has_text="tierr").wait_for()
        assert page.locator("#segment-check pre.caret").inner_text().endswith("^")
        assert fits(page), f"the segment editor is wider than {viewport['width']} px"

        for _ in "0 and tierr":  # back to "spend > 15", then saved and refreshed with the keyboard
            page.keyboard.press("Backspace")
        status.filter(has_text="19 customers now").wait_for()
        page.get_by_label("Name").fill("spenders")
        page.get_by_role("button", name="Save").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{served}/console/segments/spenders")
        page.get_by_role("button", name="Refresh now").focus()
        page.keyboard.press("Enter")
        page.get_by_role("status").filter(has_text="Refreshed: 19 members.").wait_for()
        page.locator('#segment-history[data-drawn="true"]').wait_for(state="attached")  # the count over time, drawn
        assert fits(page), f"the segment page is wider than {viewport['width']} px"

        page.goto(f"{served}/console/audiences")
        page.locator('#groups-tier[data-drawn="true"]').wait_for(state="attached")  # the chart read from the table
        assert page.locator("canvas").count() == 3
        assert fits(page), f"the audience page is wider than {viewport['width']} px"
        assert not [e for e in errors if "Content Security Policy" in e], errors
        page.close()
