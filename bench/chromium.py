"""WeasyPrint (what the engine uses) against the peer a user would pick instead: headless
Chromium through Playwright, one persistent browser, on the same statement HTML.

Chromium is Debian's (`/usr/bin/chromium`), never a downloaded browser; the comparison
is skipped with a message when it or the `playwright` package is absent. Chromium ignores
CSS paged-media margin boxes ("page x of y" in the footer) and cannot write PDF/A or
tagged PDF/UA, so its PDFs are not a drop-in replacement; this measures speed only.
Both engines render the statements' own pages here (no terms page), one document after
the other in turns, so a change of load on the machine hits both alike.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from io import BytesIO
from pathlib import Path

from bench.common import TEMPLATES

CHROMIUM = "/usr/bin/chromium"
ASSETS_ORIGIN = "http://templates.ccm.invalid"  # answered by Playwright, never looked up
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _css() -> str:
    """statement.css with its @import of print-base.css resolved, for a <style> element."""
    css = (TEMPLATES / "assets" / "statement.css").read_text(encoding="utf-8")
    return re.sub(r'@import\s+(?:url\()?["\']?([^"\')]+)["\']?\)?\s*;',
                  lambda m: (TEMPLATES / "assets" / m.group(1)).read_text(encoding="utf-8"), css)


def _serve_template_file(route) -> None:  # type: ignore[no-untyped-def]
    """Answer a request for ``ASSETS_ORIGIN/<path>`` with that file of the template folder."""
    relative = route.request.url.removeprefix(ASSETS_ORIGIN + "/").split("?", 1)[0]
    path = (TEMPLATES / relative).resolve()
    if TEMPLATES.resolve() not in path.parents or not path.is_file():
        route.fulfill(status=404, body="")
        return
    types = {".svg": "image/svg+xml", ".png": "image/png", ".css": "text/css", ".jpg": "image/jpeg"}
    route.fulfill(status=200, body=path.read_bytes(), content_type=types.get(path.suffix, "application/octet-stream"))


def _missing() -> str | None:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    return None


def _descendants_pss_mib(root: int) -> float:
    """Proportional set size (shared pages split between their sharers) of every process
    below ``root`` (the Playwright driver and the browser's processes), or of this
    process alone when ``root`` is negative."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    below, frontier = set(), {root}
    if root < 0:  # this process alone
        below, frontier = {os.getpid()}, set()
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - below
        below |= frontier
    total = 0
    for pid in below:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("Pss:")), 0)
        except OSError:
            continue
    return total / 1024


def compare(documents: list[str], *, engine_ms_per_page: float | None = None, quiet: bool = False) -> dict | None:
    """Render ``documents`` (statement HTML) with WeasyPrint, the baseline's way, and with
    Chromium, in turns; print ms/page of each and the ratios (unless ``quiet``) and return
    them; None when Chromium is missing."""
    missing = _missing()
    if missing:
        if not quiet:
            print(f"chromium comparison skipped: {missing}")
        return None
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    stylesheet = CSS(filename=str(TEMPLATES / "assets" / "statement.css"), font_config=fonts)
    # The same relative resources (the logo) for Chromium: a base URL that Playwright answers
    # from the template folder, so no request leaves the process and both draw the same page.
    style = f'<base href="{ASSETS_ORIGIN}/"><style>{_css()}</style>'
    weasy = chromium = 0.0
    weasy_pages = chromium_pages = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.route(f"{ASSETS_ORIGIN}/**", _serve_template_file)
        page.set_content(documents[0].replace("</head>", style + "</head>", 1), wait_until="load")
        page.pdf(format="A4", print_background=True)  # warm up, like WeasyPrint's parsed stylesheet
        for html in documents:
            start = time.perf_counter()
            document = HTML(string=html, base_url=str(TEMPLATES)).render(stylesheets=[stylesheet], font_config=fonts)
            document.write_pdf()
            middle = time.perf_counter()
            page.set_content(html.replace("</head>", style + "</head>", 1), wait_until="load")
            pdf = page.pdf(format="A4", print_background=True)
            end = time.perf_counter()
            weasy += middle - start
            chromium += end - middle
            weasy_pages += len(document.pages)
            chromium_pages += len(PdfReader(BytesIO(pdf)).pages)
        chromium_mib = _descendants_pss_mib(os.getpid())
        own_mib = _descendants_pss_mib(-1)
        browser.close()
    figures = {"weasyprint_ms_per_page": weasy / weasy_pages * 1000, "chromium_ms_per_page": chromium / chromium_pages * 1000,
               "chromium_mib": chromium_mib}
    if quiet:
        return figures
    print(f"PDF engines, {len(documents)} of the same statements' HTML, one process, in turns "
          f"(WeasyPrint {weasy_pages} pages, Chromium {chromium_pages}):")
    print(f"  WeasyPrint  {weasy:7.2f} s  {weasy / weasy_pages * 1000:6.1f} ms/page")
    print(f"  Chromium    {chromium:7.2f} s  {chromium / chromium_pages * 1000:6.1f} ms/page (one persistent browser; "
          "no paged-media footers, no PDF/A or PDF/UA)")
    print(f"  memory: this process (Python, WeasyPrint, the benchmark's data) {own_mib:.0f} MiB; Playwright and Chromium "
          f"held {chromium_mib:.0f} MiB (proportional set size of their processes)")
    line = f"  Chromium is {weasy / weasy_pages / (chromium / chromium_pages):.1f}x faster per page than plain WeasyPrint"
    if engine_ms_per_page is not None:
        line += (f"; the engine's whole cycle, per statement page ({engine_ms_per_page:.1f} ms: its time over the statements' own "
                 f"pages, the appended terms page not counted), takes {engine_ms_per_page / (chromium / chromium_pages * 1000):.1f}x Chromium's time per page")
    print(line)
    return figures


def main(customers: int) -> None:
    """The comparison alone, on ``customers`` statements of the statement-cycle benchmark's data."""
    from bench.statement_cycle import statement_html, write_data

    with tempfile.TemporaryDirectory(prefix="ccm-bench-chromium-") as tmp:
        customers_file, feed_file = write_data(Path(tmp), customers)
        documents = [statement.html for statement in statement_html(feed_file, customers_file)]
    compare(documents)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.chromium", description=__doc__)
    parser.add_argument("--customers", type=int, default=100, help="statements to render with each engine")
    main(parser.parse_args().customers)
