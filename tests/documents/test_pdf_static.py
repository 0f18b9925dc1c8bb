"""Static pages laid out once and drawn into many documents; the garbage collector
held off during a render and given back as it was."""

from __future__ import annotations

import gc
import threading
from io import BytesIO

import pytest
from pypdf import PdfReader

from documents import WeasyPrintRenderer
from documents import pdf as pdf_module

TERMS = '<h1 style="font-family: \'DejaVu Sans\'">Terms 4711</h1><p>Pay on time.</p>'


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> WeasyPrintRenderer:
    return WeasyPrintRenderer([tmp_path_factory.mktemp("assets")])


def page_texts(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(data)).pages]


def test_static_pages_are_appended_after_the_documents_own_pages(renderer: WeasyPrintRenderer) -> None:
    terms = renderer.static_pages(TERMS)
    assert terms.pages == 1
    for name in ("Alice", "Bob"):
        document = renderer.render(f'<p>{name} page one</p><p style="break-before: page">{name} page two</p>',
                                   append=[terms])
        texts = page_texts(document.data)
        assert document.pages == len(texts) == 3
        assert f"{name} page one" in texts[0] and f"{name} page two" in texts[1]
        assert "Terms 4711" in texts[2] and name not in texts[2]


def test_static_pages_are_laid_out_once(renderer: WeasyPrintRenderer, monkeypatch: pytest.MonkeyPatch) -> None:
    terms = renderer.static_pages(TERMS)
    layouts = []
    original = renderer._layout
    monkeypatch.setattr(renderer, "_layout", lambda *args: layouts.append(args[0]) or original(*args))
    for _ in range(3):
        renderer.render("<p>statement</p>", append=[terms, terms])
    assert layouts == ["<p>statement</p>"] * 3  # the terms never again


def test_appended_pages_keep_the_documents_pdf_a_identification(renderer: WeasyPrintRenderer) -> None:
    terms = renderer.static_pages(TERMS, archive=True)
    document = renderer.render('<html lang="en"><title>Statement 2026-11</title><p>statement</p></html>',
                               archive=True, append=[terms])
    reader = PdfReader(BytesIO(document.data))
    root = reader.trailer["/Root"]
    metadata = root["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in metadata or b'pdfaid:part="3"' in metadata
    assert "/OutputIntents" in root
    assert reader.metadata.title == "Statement 2026-11"
    assert len(reader.pages) == 2


def test_static_pages_must_match_the_pdf_variant(renderer: WeasyPrintRenderer) -> None:
    plain = renderer.static_pages(TERMS)
    with pytest.raises(ValueError, match="same PDF variant"):
        renderer.render("<p>x</p>", archive=True, append=[plain])


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_is_given_back_as_it_was(renderer: WeasyPrintRenderer, enabled: bool) -> None:
    seen = []
    original = renderer._layout

    def layout(*args):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return original(*args)

    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        renderer._layout = layout  # type: ignore[method-assign]
        renderer.render("<p>x</p>")
        assert seen == [False] and gc.isenabled() is enabled
        with pytest.raises(FileNotFoundError):
            renderer.render("<p>x</p>", stylesheets=["assets/missing.css"])
        assert gc.isenabled() is enabled
    finally:
        del renderer._layout
        (gc.enable if was else gc.disable)()


def test_collector_comes_back_when_the_last_of_several_threads_ends(renderer: WeasyPrintRenderer) -> None:
    assert gc.isenabled()
    inside = threading.Barrier(2)
    leave = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with pdf_module._collector_held():
                inside.wait(timeout=10)
                leave.wait(timeout=10)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=hold)
    thread.start()
    with pdf_module._collector_held():
        inside.wait(timeout=10)
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread still renders
    leave.set()
    thread.join(timeout=10)
    assert not errors and gc.isenabled()


def test_pdf_a_streams_serialised_once_give_the_same_bytes(renderer: WeasyPrintRenderer) -> None:
    html = ('<html lang="en"><p style="font-family: \'DejaVu Sans\'">Statement <b>bold</b></p>'
            '<p style="break-before: page; font-family: \'Noto Sans CJK SC\'">张伟</p></html>')
    document = renderer._layout(html, [], {"pdf_variant": pdf_module.ARCHIVE_VARIANT})
    with pdf_module._quiet_srgb_leak():
        plain = document.write_pdf(pdf_variant=pdf_module.ARCHIVE_VARIANT)
        once = document.write_pdf(pdf_variant=pdf_module.ARCHIVE_VARIANT, finisher=pdf_module._serialise_streams_once)
    assert once == plain
    assert "/ID" in PdfReader(BytesIO(once)).trailer  # the identifier PDF/A needs is still there
