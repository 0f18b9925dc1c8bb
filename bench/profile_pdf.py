"""Where a statement's render time goes: WeasyPrint profiled on our own templates.

The statements of the statement-cycle benchmark (two pages of their own, the shipped
insert, the QR code) rendered the engine's way (``documents.WeasyPrintRenderer``: parsed
stylesheet, one FontConfiguration, PDF/A-3b, the terms page laid out once per locale and
appended) under cProfile. Time is attributed by where it is spent, the functions' own
time grouped by the module they are in; C calls (Pango, HarfBuzz, zlib through cffi and
the standard library) count for the Python module that called them:

- HTML parsing, style computation (cascade and computed values), building boxes,
- layout: tables, flex, blocks, inline text and line breaking, pages (margin boxes,
  "page x of y" counters), the rest,
- drawing (stacking contexts and the page's drawing operators), PDF writing (fonts
  subsetting, images, serialisation by pydyf, compression),
- everything else (the renderer's own code, the garbage collector is held off).

Profiling slows Python code more than C code, so the shares are a guide to where to look,
not a measurement of speed; the statement-cycle benchmark measures that.
"""
from __future__ import annotations

import cProfile
import pstats
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.common import TEMPLATES

# (category, substring of the code's file path), first match wins
CATEGORIES = (
    ("HTML parsing", "/tinyhtml5/"),
    ("HTML parsing", "/html5lib/"),
    ("HTML parsing", "weasyprint/html.py"),
    ("style computation", "weasyprint/css/"),
    ("style computation", "/tinycss2/"),
    ("style computation", "/cssselect2/"),
    ("building boxes", "weasyprint/formatting_structure/"),
    ("layout: tables", "weasyprint/layout/table.py"),
    ("layout: flex", "weasyprint/layout/flex.py"),
    ("layout: blocks and floats", "weasyprint/layout/block.py"),
    ("layout: blocks and floats", "weasyprint/layout/float.py"),
    ("layout: inline text, line breaks", "weasyprint/layout/inline.py"),
    ("layout: inline text, line breaks", "weasyprint/text/"),
    ("layout: pages, margin boxes, counters", "weasyprint/layout/page.py"),
    ("layout: other", "weasyprint/layout/"),
    ("drawing", "weasyprint/draw/"),
    ("drawing", "weasyprint/stacking.py"),
    ("drawing", "weasyprint/svg/"),
    ("drawing", "weasyprint/images.py"),
    ("PDF writing: fonts", "weasyprint/pdf/fonts.py"),
    ("PDF writing", "weasyprint/pdf/"),
    ("PDF writing", "/pydyf/"),
    ("PDF writing", "documents/pdf.py"),  # the PDF/A stream finisher
)


def categorise(filename: str) -> str:
    path = filename.replace("\\", "/")
    for category, part in CATEGORIES:
        if part in path:
            return category
    return "other (document, fetcher, Python)"


def attribute(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per category: each Python function's own time in its module's category, each
    C function's time split among its Python callers (by what each caller's calls took)."""
    seconds: dict[str, float] = defaultdict(float)
    for (filename, _, _), (_, _, own, _, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if filename != "~":
            seconds[categorise(filename)] += own
            continue
        spent = sum(caller[2] for caller in callers.values()) or 1.0  # own time through each caller
        for (caller_file, _, _), caller in callers.items():
            seconds[categorise(caller_file) if caller_file != "~" else "other (document, fetcher, Python)"] += own * caller[2] / spent
    return seconds


def main(statements: int = 50) -> dict[str, float]:
    """Profile ``statements`` renders; print the table; return the shares (0..1) by category."""
    from bench.statement_cycle import statement_html, terms_html, write_data
    from documents import WeasyPrintRenderer

    with tempfile.TemporaryDirectory(prefix="ccm-bench-profile-") as tmp:
        customers_file, feed_file = write_data(Path(tmp), statements)
        documents = list(statement_html(feed_file, customers_file))
    renderer = WeasyPrintRenderer([TEMPLATES])
    sheets = ["assets/statement.css"]
    terms = {}
    for statement in documents[:10]:  # warm up: fonts, the parsed stylesheet, cffi's parsed C types
        renderer.render(statement.html, stylesheets=sheets, archive=True)
    profile = cProfile.Profile()
    pages = 0
    profile.enable()
    for statement in documents:
        if statement.locale not in terms:
            terms[statement.locale] = renderer.static_pages(terms_html(statement.locale), stylesheets=sheets, archive=True)
        pages += renderer.render(statement.html, stylesheets=sheets, archive=True, append=[terms[statement.locale]]).pages
    profile.disable()
    stats = pstats.Stats(profile)
    seconds = attribute(stats)
    total = sum(seconds.values())
    print(f"where a statement's render goes (cProfile, {len(documents)} statements, {pages} pages, PDF/A-3b with the terms "
          f"page appended; {total / len(documents) * 1000:.0f} ms/statement under the profiler):")
    for category, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"  {category:40s} {spent / total * 100:5.1f} %  {spent / len(documents) * 1000:6.1f} ms/statement")
    return {category: spent / total for category, spent in seconds.items()}


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.profile_pdf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=50, help="statements to render under the profiler")
    main(parser.parse_args().statements)
