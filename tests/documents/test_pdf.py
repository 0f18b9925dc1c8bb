"""WeasyPrint renderer: restricted fetching, cached stylesheets, PDF/A, fonts."""

from __future__ import annotations

import logging
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from documents import PdfDocument, WeasyPrintRenderer, harfbuzz_subset_available, pdf_fonts

PNG_1PX = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
           "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("assets")
    (root / "assets").mkdir()
    (root / "assets" / "doc.css").write_text("body { font-family: 'DejaVu Sans'; color: #123; }",
                                             encoding="utf-8")
    (root / "assets" / "dot.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><circle cx="5" cy="5" r="5"/></svg>',
        encoding="utf-8")
    secret = tmp_path_factory.mktemp("outside") / "secret.css"
    secret.write_text("body::after { content: 'TOPSECRETVALUE'; }", encoding="utf-8")
    (root / "assets" / "link.css").symlink_to(secret)
    return root


@pytest.fixture(scope="module")
def renderer(assets: Path) -> WeasyPrintRenderer:
    return WeasyPrintRenderer([assets])


def text_of(document: PdfDocument) -> str:
    return "".join(page.extract_text() for page in PdfReader(BytesIO(document.data)).pages)


def test_renders_pages(renderer: WeasyPrintRenderer) -> None:
    document = renderer.render('<p>one</p><p style="break-before: page">two</p>')
    assert document.pages == 2
    assert document.data.startswith(b"%PDF")
    assert len(PdfReader(BytesIO(document.data)).pages) == 2


def test_refuses_files_outside_assets(renderer: WeasyPrintRenderer, caplog: pytest.LogCaptureFixture) -> None:
    before = renderer.fetcher.refusals
    with caplog.at_level(logging.WARNING, logger="documents.fetcher"):
        document = renderer.render(
            '<link rel="stylesheet" href="file:///etc/passwd">'
            '<link rel="stylesheet" href="../../../../../../etc/passwd">'
            '<link rel="stylesheet" href="assets/link.css">'
            '<img src="file:///etc/passwd"><p>body text</p>')
    text = text_of(document)
    assert "body text" in text
    assert "root:" not in text and "TOPSECRETVALUE" not in text
    assert renderer.fetcher.refusals - before == 4
    assert any("/etc/passwd" in record.getMessage() for record in caplog.records)


def test_refuses_network_by_default(renderer: WeasyPrintRenderer, caplog: pytest.LogCaptureFixture) -> None:
    before = renderer.fetcher.refusals
    with caplog.at_level(logging.WARNING, logger="documents.fetcher"):
        renderer.render('<img src="http://127.0.0.1:9/pixel.png?token=SECRET123">')
    assert renderer.fetcher.refusals - before == 1
    ours = [record for record in caplog.records if record.name == "documents.fetcher"]
    messages = " ".join(record.getMessage() for record in ours)
    assert "127.0.0.1:9/pixel.png" in messages
    assert "SECRET123" not in messages


def test_serves_assets_and_data_urls(renderer: WeasyPrintRenderer) -> None:
    before = renderer.fetcher.refusals
    renderer.render(f'<img src="assets/dot.svg"><img src="{PNG_1PX}">')
    assert renderer.fetcher.refusals == before


def test_stylesheet_parsed_once_across_renders(assets: Path) -> None:
    renderer = WeasyPrintRenderer([assets])
    first = renderer.stylesheet("assets/doc.css")
    for _ in range(3):
        renderer.render("<p>x</p>", stylesheets=["assets/doc.css"])
    assert renderer.stylesheet("assets/doc.css") is first
    assert renderer.stylesheet_parses == 1


def test_unknown_or_escaping_stylesheet_is_refused(renderer: WeasyPrintRenderer) -> None:
    for name in ("assets/nope.css", "../../etc/passwd"):
        with pytest.raises(FileNotFoundError):
            renderer.render("<p>x</p>", stylesheets=[name])


def test_archive_is_pdf_a(renderer: WeasyPrintRenderer) -> None:
    document = renderer.render("<p>archive</p>", archive=True)
    metadata = PdfReader(BytesIO(document.data)).trailer["/Root"]["/Metadata"].get_object().get_data()
    assert b"pdfaid:part" in metadata
    assert b"<pdfaid:part>3</pdfaid:part>" in metadata or b'pdfaid:part="3"' in metadata


def test_cjk_font_is_embedded(renderer: WeasyPrintRenderer) -> None:
    document = renderer.render(
        '<p style="font-family: \'DejaVu Sans\', \'Noto Sans CJK SC\'">Name: 张伟</p>')
    assert any("CJK" in font for font in pdf_fonts(document.data))
    extracted = subprocess.run(["pdftotext", "-", "-"], input=document.data,
                               capture_output=True, check=True).stdout.decode()
    assert "张伟" in extracted


def test_harfbuzz_subset_is_detected() -> None:
    assert harfbuzz_subset_available() is True  # libharfbuzz-subset0 is installed here
