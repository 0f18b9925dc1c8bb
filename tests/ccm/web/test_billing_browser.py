"""The billing desk in a real browser, as the issue walks it: the billing user uploads the
month's feed, sees the rejects, starts the cycle, watches it finish on the live page and
reprints a statement after confirming their password; at 390 px and on a desktop."""
from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from ccm.imports import import_customers
from ccm.models import ArchivedDocument, Customer
from ccm.runs import archive_root

from .conftest import PASSWORD, PHONE, browser_sign_in, fits

DESKTOP = {"width": 1280, "height": 800}


def write_feed(folder: Path, statement_data, period: str) -> Path:
    """The six test customers' statements for ``period``, and one of an unknown customer."""
    path = folder / f"feed-{period}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, ext in enumerate(("C-EMAIL", "C-PRINT", "C-ZH", "C-NOCONSENT", "C-NOWHERE", "C-SMSONLY", "C-GHOST"), 1):
            record = statement_data(ext, f"ACC-{i}", 2)
            record["period"] = period
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def stale_sign_in(page, app) -> None:  # type: ignore[no-untyped-def]
    """Make the browser's sign-in an old one (as after fresh_minutes), keeping the session."""
    serializer = app.session_interface.get_signing_serializer(app)
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = next(c for c in page.context.cookies() if c["name"] == name)
    data = serializer.loads(cookie["value"])
    data["fresh_at"] = 0
    page.context.add_cookies([{**cookie, "value": serializer.dumps(data)}])


def test_billing_uploads_starts_watches_and_reprints(served, browser, app, engine, customers_file, statement_data, tmp_path):
    from playwright.sync_api import expect

    assert import_customers(engine.db, customers_file, rejects_dir=tmp_path, progress=False).rejected == 0
    for viewport, period in ((PHONE, "2026-11"), (DESKTOP, "2026-12")):
        context = browser.new_context(viewport=viewport, accept_downloads=True)
        page = context.new_page()
        browser_sign_in(page, served, "billing")
        page.get_by_role("navigation", name="Desks").get_by_role("link", name="Billing").click()
        page.get_by_label("Billing feed (CSV or JSONL)").set_input_files(str(write_feed(tmp_path, statement_data, period)))
        page.get_by_role("button", name="Upload and check").click()

        # The validation results and the rejects, before anything is planned.
        expect(page.get_by_role("heading", name=f"Feed checked: feed-{period}.jsonl")).to_be_visible()
        expect(page.get_by_role("table", name="Rejects")).to_contain_text("unknown customer")
        assert page.get_by_label("Billing period").input_value() == period
        assert fits(page), f"the checked feed is wider than {viewport['width']} px"
        page.get_by_role("button", name="Start the cycle").click()

        # The live page follows the run until it is done, without a reload.
        page.wait_for_url(f"{served}/console/runs/*")
        expect(page.locator("#run-state")).to_have_text("completed", timeout=120_000)
        expect(page.locator("#reconciliation")).to_contain_text("reconciled")
        expect(page.get_by_role("heading", name="Print production")).to_be_visible()
        assert fits(page), f"the run page is wider than {viewport['width']} px"
        page.screenshot(path=str(tmp_path / f"run-{viewport['width']}.png"), full_page=True)

        # The archive, and a reprint after confirming the password.
        page.get_by_role("navigation", name="Desks").get_by_role("link", name="Billing").click()
        page.get_by_role("link", name="Search the archive").click()
        page.get_by_label("Customer (id or name)").fill("C-PRINT")
        page.get_by_label("Cycle").fill(period)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="1 documents found")).to_be_visible()
        assert fits(page), f"the archive is wider than {viewport['width']} px"
        stale_sign_in(page, app)
        page.get_by_role("button", name="Reprint").click()
        page.wait_for_url(f"{served}/console/confirm?**")
        page.get_by_label("Password").fill(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="1 documents found")).to_be_visible()
        with page.expect_download() as download:
            page.get_by_role("button", name="Reprint").click()
        with engine.db.reader() as session:
            doc = session.scalar(select(ArchivedDocument).join(Customer, Customer.id == ArchivedDocument.customer_id)
                                 .where(Customer.external_id == "C-PRINT", ArchivedDocument.cycle == period))
        assert Path(download.value.path()).read_bytes() == (archive_root(engine.var_dir) / doc.path).read_bytes()
        context.close()
