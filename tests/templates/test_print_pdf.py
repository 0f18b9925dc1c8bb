"""The statement and bill as real PDFs, read back with pdftotext and pypdf."""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal

import pytest

from documents import PdfDocument, TemplateEnvironment, WeasyPrintRenderer, pdf_fonts

from .conftest import make_context, render_for

LONG_WORD = "Supercalifragilisticexpialidocious" * 6


def pdf_pages_text(document: PdfDocument) -> list[str]:
    result = subprocess.run(["pdftotext", "-layout", "-", "-"], input=document.data,
                            capture_output=True, check=True)
    return result.stdout.decode("utf-8").split("\f")[: document.pages]


def render_statement(env: TemplateEnvironment, renderer: WeasyPrintRenderer, context: dict) -> PdfDocument:
    html = render_for(env, "statement/statement.html", context)
    return renderer.render(html, stylesheets=["assets/statement.css"])


@pytest.fixture(scope="module")
def english(env: TemplateEnvironment, renderer: WeasyPrintRenderer) -> tuple[PdfDocument, list[str]]:
    context = make_context(lines=120, insert='<aside class="insert"><h2>Premium insert 7731</h2></aside>')
    context["statement"]["lines"][5]["description"] = LONG_WORD
    context["statement"]["lines"][6]["amount"] = Decimal("-12345678.90")
    context["statement"]["lines"][7]["amount"] = Decimal("9999999999.99")
    document = render_statement(env, renderer, context)
    return document, pdf_pages_text(document)


@pytest.fixture(scope="module")
def chinese(env: TemplateEnvironment, renderer: WeasyPrintRenderer) -> tuple[PdfDocument, list[str]]:
    document = render_statement(env, renderer, make_context(chinese=True, lines=120))
    return document, pdf_pages_text(document)


def test_statement_breaks_across_pages(english: tuple[PdfDocument, list[str]]) -> None:
    document, pages = english
    assert document.pages >= 3
    assert "Card purchase #119" in pages[-1]


def test_table_header_repeats_on_every_page(english: tuple[PdfDocument, list[str]]) -> None:
    _, pages = english
    for number, text in enumerate(pages, start=1):
        assert re.search(r"Date\s+Description\s+Amount", text), f"no header on page {number}"


def test_running_footer_counts_pages(english: tuple[PdfDocument, list[str]]) -> None:
    document, pages = english
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {document.pages}" in text


def test_rows_are_never_split(english: tuple[PdfDocument, list[str]]) -> None:
    _, pages = english
    rows = [re.findall(r"Card purchase #(\d{3})", text) for text in pages]
    flat = [row for page in rows for row in page]
    assert len(flat) == len(set(flat)) == 119  # line 5 carries a long word instead


def test_hostile_values_do_not_break_layout(english: tuple[PdfDocument, list[str]]) -> None:
    _, pages = english
    text = "".join(pages)
    assert "-$12,345,678.90" in text and "$9,999,999,999.99" in text
    assert "Supercalifragilistic" in text  # wrapped, not clipped away


def test_insert_slot_appears(english: tuple[PdfDocument, list[str]]) -> None:
    _, pages = english
    assert "Premium insert 7731" in pages[-1]


def test_chinese_statement(chinese: tuple[PdfDocument, list[str]]) -> None:
    document, pages = chinese
    assert any("NotoSansCJK" in font.replace("-", "") for font in pdf_fonts(document.data))
    assert "张伟" in pages[0] and "交易明细" in pages[0]
    for number, text in enumerate(pages, start=1):
        assert f"第 {number} 页，共 {document.pages} 页" in text
        assert re.search(r"日期\s+摘要\s+金额", text)
    assert "2026年12月21日" in pages[0] and "US$980.15" in pages[0]


def test_bill_is_one_page_with_remittance_slip(env: TemplateEnvironment, renderer: WeasyPrintRenderer) -> None:
    context = make_context()
    context["customer"]["name"] = "Wolfeschlegelsteinhausenbergerdorff " * 6
    html = render_for(env, "bill/bill.html", context)
    document = renderer.render(html, stylesheets=["assets/bill.css"])
    assert document.pages == 1
    text = pdf_pages_text(document)[0]
    assert "Detach and return this slip" in text and "Amount enclosed" in text
    assert "Page 1 of 1" in text


def test_stylesheets_are_parsed_once(env: TemplateEnvironment, renderer: WeasyPrintRenderer,
                                     english: tuple[PdfDocument, list[str]]) -> None:
    parsed = renderer.stylesheet("assets/statement.css")
    render_statement(env, renderer, make_context(lines=2))
    assert renderer.stylesheet("assets/statement.css") is parsed
    assert renderer.fetcher.refusals == 0  # logo, @import and fonts all came from the assets
