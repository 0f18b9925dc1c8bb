"""WeasyPrint (what the engine uses) against the peer a user would pick instead: headless
Chromium through Playwright, one persistent browser, on the same statement HTML.

Chromium is Debian's (`/usr/bin/chromium`), never a downloaded browser; the comparison
is skipped with a message when it or the `playwright` package is absent. Chromium ignores
CSS paged-media margin boxes ("page x of y" in the footer) and cannot write PDF/A or
tagged PDF/UA, so its PDFs are not a drop-in replacement; this measures speed only.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import TEMPLATES
from bench.statement_cycle import statement_html

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _css() -> str:
    """statement.css with its @import of print-base.css resolved, for a <style> element."""
    css = (TEMPLATES / "assets" / "statement.css").read_text(encoding="utf-8")
    return re.sub(r'@import\s+(?:url\()?["\']?([^"\')]+)["\']?\)?\s*;',
                  lambda m: (TEMPLATES / "assets" / m.group(1)).read_text(encoding="utf-8"), css)


def main(customers: int) -> None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        print("chromium comparison skipped: Debian's chromium is not installed (apt-get install chromium)")
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("chromium comparison skipped: the playwright package is not installed (pip install playwright)")
        return
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    from ccm.demo import write_demo_data

    with tempfile.TemporaryDirectory(prefix="ccm-bench-chromium-") as tmp:
        customers_file, feed_file = write_demo_data(Path(tmp), customers=customers)
        documents = list(statement_html(feed_file, customers_file))
    fonts = FontConfiguration()
    stylesheet = CSS(filename=str(TEMPLATES / "assets" / "statement.css"), font_config=fonts)
    start = time.perf_counter()
    weasy_pages = 0
    for html in documents:
        document = HTML(string=html, base_url=str(TEMPLATES)).render(stylesheets=[stylesheet], font_config=fonts)
        weasy_pages += len(document.pages)
        document.write_pdf()
    weasy = time.perf_counter() - start

    style = f"<style>{_css()}</style>"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        start = time.perf_counter()
        for html in documents:
            page.set_content(html.replace("</head>", style + "</head>", 1), wait_until="load")
            page.pdf(format="A4", print_background=True)
        chromium = time.perf_counter() - start
        browser.close()
    print(f"PDF engines, {len(documents)} statements ({weasy_pages} pages by WeasyPrint), one process:")
    print(f"  WeasyPrint  {weasy:7.2f} s  {weasy / weasy_pages * 1000:7.1f} ms/page")
    print(f"  Chromium    {chromium:7.2f} s  {chromium / weasy_pages * 1000:7.1f} ms/page (same HTML and CSS, one persistent browser)")
    print(f"  Chromium is {weasy / chromium:.1f}x faster (no paged-media footers, no PDF/A or PDF/UA)")
