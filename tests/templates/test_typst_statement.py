"""The shipped statement in Typst: the same content as the HTML one, formatted by the
engine, "Page x of y" and the table header on every page, the insert of its slot, the
QR code, Chinese text, and a name with markup printed as typed."""
from __future__ import annotations

import subprocess

from io import BytesIO

import pytest
from pypdf import PdfReader

from documents import TemplateEnvironment, pdf_fonts
from documents.typst_pdf import TypstRenderer

from .conftest import TEMPLATES, make_context

pytest.importorskip("typst")


@pytest.fixture(scope="module")
def typst() -> TypstRenderer:
    return TypstRenderer(TEMPLATES)


def render(env: TemplateEnvironment, typst: TypstRenderer, context: dict, *, archive: bool = False):
    customer = context["customer"]
    data = env.typst_data(context, locale=customer["locale"], timezone=customer["timezone"])
    source = (TEMPLATES / "statement" / "statement.typ").read_text()
    document = typst.render(source, data, template="statement/statement.typ", archive=archive)
    pages = subprocess.run(["pdftotext", "-layout", "-", "-"], input=document.data, capture_output=True,
                           check=True).stdout.decode().split("\f")
    return document, pages[:document.pages]


def test_the_statement_runs_over_pages_with_its_header_footer_and_insert(env, typst) -> None:
    context = make_context(lines=90, insert="inserts/premium_upgrade.typ")
    context["customer"]["name"] = 'Alice #strong[Walker] $x$ <b>'
    document, pages = render(env, typst, context)
    assert document.pages == len(PdfReader(BytesIO(document.data)).pages)  # the page tree's count, read fast
    statement, terms = pages[:-1], pages[-1]
    assert len(statement) >= 3
    assert all("Description" in page for page in statement)  # the header repeated on every page
    assert all(f"Page {n} of {len(statement)}" in page for n, page in enumerate(statement, 1))
    assert "Terms and conditions" in terms and "Page" not in terms  # the back page, not numbered
    first, last = statement[0], statement[-1]
    assert "Alice #strong[Walker] $x$ <b>" in first  # printed as typed
    assert "$980.15" in first and "December 21, 2026" in first and "Nov 1, 2026 – Nov 30, 2026" in first
    assert "Pay online" in first and "acme.example/s/2a-0-Xy12AbCd34" in first
    assert "Upgrade to Premium" in last and "Alice #strong[Walker] $x$ <b>, get priority support" in " ".join(last.split())
    assert "-$42.17" in first


def test_a_chinese_statement_is_in_chinese_in_a_tagged_archive(env, typst) -> None:
    document, pages = render(env, typst, make_context(chinese=True, lines=5, insert=None), archive=True)
    text = " ".join(pages)
    assert "张伟" in text and "月度对账单" in text and "第 1 页，共 1 页" in text and "条款" in pages[-1]
    metadata = PdfReader(BytesIO(document.data)).trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in metadata and b"<pdfuaid:part>1</pdfuaid:part>" in metadata
    assert any("CJK" in font for font in pdf_fonts(document.data))


def test_no_insert_when_the_decision_leaves_the_slot_empty(env, typst) -> None:
    context = make_context(lines=3)
    context["slots"] = {"statement.insert": None}
    _, pages = render(env, typst, context)
    assert "Upgrade to Premium" not in " ".join(pages) and "Go paperless" not in " ".join(pages)


def test_the_bill_is_one_page_with_its_remittance_slip(env, typst) -> None:
    context = make_context(lines=40)
    data = env.typst_data(context, locale="en_US", timezone="America/New_York")
    document = typst.render((TEMPLATES / "bill" / "bill.typ").read_text(), data, template="bill/bill.typ", archive=True)
    text = subprocess.run(["pdftotext", "-", "-"], input=document.data, capture_output=True, check=True).stdout.decode()
    assert document.pages == 1
    assert "Detach and return this slip with your payment" in text and "Amount enclosed" in text
    assert "ACC-0042-7788 2026-11 980.15" in text  # the scan line


def test_a_right_to_left_statement_keeps_latin_values_in_their_order(env, typst) -> None:
    context = make_context(lines=3, insert="inserts/go_paperless.typ")
    data = env.typst_data(context, locale="ar_EG", timezone="UTC")
    assert data["dir"] == "rtl"
    document = typst.render((TEMPLATES / "statement" / "statement.typ").read_text(), data, template="statement/statement.typ",
                            archive=True)
    text = subprocess.run(["pdftotext", "-", "-"], input=document.data, capture_output=True, check=True).stdout.decode()
    assert "Springfield, IL 62701" in text and "Alice Walker" in text and "ACC-0042-7788" in text
    assert "كشف الحساب الشهري" in text  # "Monthly statement" in Arabic


def test_the_printed_qr_code_scans_to_the_pay_link(env, typst) -> None:
    """The statement's QR code, read back from the printed page as a phone would (rendered at
    200 dpi, decoded by zxing-cpp)."""
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    document, _ = render(env, typst, make_context(lines=3))
    image = subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "200", "-png", "-"], input=document.data,
                           capture_output=True, check=True).stdout
    found = zxingcpp.read_barcodes(Image.open(BytesIO(image)))
    assert [code.text for code in found] == ["https://acme.example/s/2a-0-Xy12AbCd34"]
