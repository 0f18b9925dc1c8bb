"""The decisions editor in a real browser: a rule dragged to the top keeps its new place
when the form is counted, at phone width and on a desktop."""
from __future__ import annotations

from ccm.authoring.store import sync_library

from .conftest import PHONE, browser_sign_in, fits

SLOT = "/console/decisions/monthly-statement/statement.insert"


def test_a_marketer_drags_a_rule_to_the_top_and_counts(served, browser, engine):
    with engine.db.session() as session:
        sync_library(session, engine.templates_dir)
    for viewport in (PHONE, {"width": 1280, "height": 900}):
        page = browser.new_page(viewport=viewport)
        browser_sign_in(page, served, "marketer")
        page.goto(served + SLOT)
        assert fits(page), f"the decision editor is wider than {viewport['width']} px"
        # The events a browser sends when "paper" is dragged onto "vip" (headless Chromium starts
        # no native drag from synthetic mouse moves).
        page.evaluate("""() => {
            const cards = [...document.querySelectorAll('ol.rules > li')], data = new DataTransfer();
            const send = (card, type) => card.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data}));
            send(cards[2], 'dragstart'); send(cards[0], 'dragover'); send(cards[0], 'drop'); send(cards[2], 'dragend');
        }""")
        assert page.locator("ol.rules > li").first.locator("#rule-2-name").input_value() == "paper"
        page.get_by_role("button", name="Count per rule and variant").click()
        page.get_by_role("status").wait_for()
        names = [page.locator(f"#rule-{n}-name").input_value() for n in range(3)]
        assert names == ["paper", "vip", "winback"]
        page.close()
