"""The marketer's path in a real browser, at phone width and on a desktop: edit an insert in
the code editor, see the live preview change before saving, save and submit it; an approver
approves it."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from ccm.authoring.store import sync_library

from .conftest import PHONE, browser_sign_in, fits

INSERT = "inserts/go_paperless.html"
DESKTOP = {"width": 1280, "height": 900}


def test_a_marketer_edits_an_insert_sees_the_preview_and_an_approver_approves(served, browser, engine):
    with engine.db.session() as session:
        sync_library(session, engine.templates_dir)
    for version, viewport in ((2, PHONE), (3, DESKTOP)):
        words = f"Paper free at {viewport['width']}"
        page = browser.new_page(viewport=viewport)
        browser_sign_in(page, served, "marketer")
        page.goto(f"{served}/console/templates")
        assert fits(page), f"the library is wider than {viewport['width']} px"
        page.get_by_role("link", name=INSERT).first.click()
        page.get_by_role("link", name="Edit the newest version").click()
        page.locator(".cm-content").wait_for()  # the textarea became the code editor
        page.locator('#preview img[alt="Page 1"]').wait_for()  # the first preview
        assert fits(page), f"the editor is wider than {viewport['width']} px"
        page.locator(".cm-content").click()
        page.keyboard.press("Control+End")
        page.keyboard.type(f"\n{words}")
        page.locator("#preview .studio-pdf-text pre", has_text=words).wait_for(state="attached")  # unsaved, rendered
        assert page.locator("#problems li").count() == 0
        page.keyboard.type("{{ oops")  # a mistake: checked as typed, shown at its line
        page.locator("#problems li.error a[data-line]").first.wait_for()
        for _ in range(len("{{ oops")):
            page.keyboard.press("Backspace")
        page.locator("#problems li").first.wait_for(state="detached")
        page.get_by_role("button", name="Save the draft").click()
        page.get_by_text(f"Version {version} saved as a draft.").wait_for()
        page.get_by_role("link", name="Versions and history of this template").click()
        page.get_by_role("button", name=f"Submit v{version} for review").click()
        page.get_by_text(f"Version {version} is in review").wait_for()
        assert fits(page), f"the template's page is wider than {viewport['width']} px"
        page.close()

        page = browser.new_page(viewport=viewport)
        browser_sign_in(page, served, "approver")
        page.goto(f"{served}/console/templates/{INSERT}")
        page.get_by_role("button", name=f"Approve v{version}").click()
        page.get_by_text(f"Version {version} approved.").wait_for()
        assert fits(page)
        page.close()


def test_the_email_preview_renders_in_sandboxed_frames_at_both_widths(served, browser, engine):
    with engine.db.session() as session:
        sync_library(session, engine.templates_dir)
    for viewport in (PHONE, DESKTOP):
        page = browser.new_page(viewport=viewport)
        browser_sign_in(page, served, "marketer")
        page.goto(f"{served}/console/templates/email/statement_ready.html/edit")
        frames = page.locator("#preview iframe[sandbox='']")
        frames.first.wait_for()
        assert frames.count() == 2
        for index in range(2):
            page.frame_locator("#preview iframe[sandbox='']").nth(index).get_by_text("Alex Sample", exact=False).first.wait_for()
        assert "Alex Sample" in page.locator(".studio-text").inner_text()  # the text part
        assert fits(page), f"the e-mail preview is wider than {viewport['width']} px"
        page.close()


def test_a_new_block_is_written_in_the_editor_with_checks_and_preview_before_it_exists(served, browser, engine):
    with engine.db.session() as session:
        sync_library(session, engine.templates_dir)
    page = browser.new_page(viewport=PHONE)
    browser_sign_in(page, served, "marketer")
    page.goto(f"{served}/console/templates-new")
    page.locator(".cm-content").wait_for()  # the code editor before the template exists
    page.get_by_label("Name (a path such as inserts/spring_offer.html)").fill("inserts/autumn_offer.html")
    page.get_by_label("Kind").select_option("insert")
    page.locator(".cm-content").click()
    page.keyboard.type("<aside><p>Autumn offer for {{ customer.name }}!</p></aside>")
    page.locator("#preview .studio-pdf-text pre", has_text=re.compile(r"Autumn offer for \S.*!")).wait_for(state="attached")
    expect(page.locator("#problems li")).to_have_count(0)  # checks of a half-typed line may still be on their way
    page.keyboard.type("{{ oops")
    page.locator("#problems li.error a[data-line]").first.wait_for()
    for _ in range(len("{{ oops")):
        page.keyboard.press("Backspace")
    page.locator("#problems li").first.wait_for(state="detached")
    assert fits(page), "the new-template editor is wider than 390 px"
    page.get_by_role("button", name="Save the first draft").click()
    page.get_by_text("Version 1 saved as a draft.").wait_for()
    page.close()


def test_a_chinese_customers_statement_previews_in_chinese(served, browser, loaded):
    with loaded.db.session() as session:
        sync_library(session, loaded.templates_dir)
    page = browser.new_page(viewport=DESKTOP)
    browser_sign_in(page, served, "marketer")
    page.goto(f"{served}/console/templates/statement/statement.html/edit")
    page.locator('#preview img[alt="Page 1"]').wait_for()  # the sample first
    page.get_by_label("Customer's external id (empty: sample data)").fill("C-ZH")
    page.get_by_label("Billing cycle (YYYY-MM, empty: the latest)").fill("2026-11")
    page.get_by_label("Billing cycle (YYYY-MM, empty: the latest)").press("Tab")  # a change re-renders the preview
    page.locator("#preview .studio-pdf-text pre", has_text="王小明").wait_for(state="attached")  # the name, and the text in Chinese
    assert "账单" in page.locator("#preview .studio-pdf-text pre").text_content()
    page.close()
