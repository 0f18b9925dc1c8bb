"""The Typst statement and bill look like the HTML ones they replace as the shipped default, checked as
page images: the same paper, the address where the envelope's window is, the same things in
the same places on the first page (positions of words read back with ``pdftotext -bbox``),
and page images alike (ink per cell of a grid, rasterised by ``pdftoppm``)."""
from __future__ import annotations

import re
import statistics
import subprocess
from io import BytesIO

import pytest
from pypdf import PdfReader

from documents import PdfDocument, TemplateEnvironment, WeasyPrintRenderer
from documents.typst_pdf import TypstRenderer

from .conftest import TEMPLATES, make_context, render_for

pytest.importorskip("typst")

MM = 72 / 25.4  # points per millimetre
GRID = (6, 8)  # columns, rows of the page image's ink grid
# Words that must stand in the same place on both first pages, with how far (mm) they may move.
LANDMARKS = {
    "statement": {"Alice": 6, "Springfield,": 6, "ACC-0042-7788": 12, "Description": 25, "$980.15": 25},
    "bill": {"Alice": 6, "Springfield,": 6, "ACC-0042-7788": 12, "Previous": 25, "Detach": 12},
}


def _words(pdf: bytes) -> dict[str, tuple[float, float]]:
    """First page: each word's first position (x, y of its top-left corner, in mm)."""
    page = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    found: dict[str, tuple[float, float]] = {}
    for x, y, word in re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>([^<]+)</word>', page):
        found.setdefault(word, (float(x) / MM, float(y) / MM))
    return found


def _ink(pdf: bytes) -> list[float]:
    """First page rasterised in grey at 24 dpi: the share of dark pixels in each grid cell."""
    image = subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "24", "-gray", "-", ], input=pdf, capture_output=True,
                           check=True).stdout
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", image)
    assert header, "pdftoppm did not write a PGM"
    width, height = int(header.group(1)), int(header.group(2))
    pixels = image[header.end():]
    columns, rows = GRID
    cells = []
    for row in range(rows):
        for column in range(columns):
            xs = range(column * width // columns, (column + 1) * width // columns)
            ys = range(row * height // rows, (row + 1) * height // rows)
            dark = sum(1 for y in ys for x in xs if pixels[y * width + x] < 200)
            cells.append(dark / (len(xs) * len(ys)))
    return cells


@pytest.fixture(scope="module", params=["statement", "bill"])
def both(request: pytest.FixtureRequest, env: TemplateEnvironment, renderer: WeasyPrintRenderer) -> tuple[str, PdfDocument, PdfDocument]:
    document = request.param
    context = make_context(lines=12, insert=None)
    customer = context["customer"]
    if document == "statement":
        context["slots"] = {"statement.insert": render_for(env, "inserts/premium_upgrade.html", context)}
    html = renderer.render(render_for(env, f"{document}/{document}.html", context), stylesheets=[f"assets/{document}.css"])
    context["slots"] = {"statement.insert": "inserts/premium_upgrade.typ"} if document == "statement" else {}
    data = env.typst_data(context, locale=customer["locale"], timezone=customer["timezone"])
    typst = TypstRenderer(TEMPLATES).render((TEMPLATES / document / f"{document}.typ").read_text(), data,
                                            template=f"{document}/{document}.typ")
    return document, html, typst


def test_the_same_paper_and_the_address_in_the_envelope_window(both) -> None:
    document, html, typst = both
    sizes = [tuple(round(float(v)) for v in PdfReader(BytesIO(doc.data)).pages[0].mediabox[2:]) for doc in (html, typst)]
    assert sizes[0] == sizes[1], sizes
    words = [_words(html.data), _words(typst.data)]
    for word, tolerance in LANDMARKS[document].items():
        (x1, y1), (x2, y2) = (found[word] for found in words)
        assert abs(x1 - x2) <= tolerance and abs(y1 - y2) <= tolerance, (word, (x1, y1), (x2, y2))
    name_x, name_y = words[1]["Alice"]
    assert 15 <= name_x <= 30 and 40 <= name_y <= 95, (name_x, name_y)  # a left window envelope (DIN 5008 B, C5/DL)


def test_the_first_pages_look_alike(both) -> None:
    _, html, typst = both
    first, second = _ink(html.data), _ink(typst.data)
    assert all(sum(cells) > 0.01 for cells in (first, second))  # neither page is blank
    similarity = statistics.correlation(first, second)
    assert similarity >= 0.7, (similarity, first, second)
    columns = GRID[0]
    header = slice(0, columns)  # the masthead's row: the logo and the company, printed on both
    assert sum(first[header]) > 0 and sum(second[header]) > 0
