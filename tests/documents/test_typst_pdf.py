"""The Typst renderer: data only as JSON (markup prints as typed), files only under its
root, no packages, PDF/A-3b with PDF/UA-1 tags, CJK embedded, errors at line and column."""
from __future__ import annotations

import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader

from documents import pdf_fonts
from documents.typst_pdf import TypstProblem, TypstRenderError, TypstRenderer, check_typst_source

pytest.importorskip("typst")

STATEMENT = """#let data = json(bytes(sys.inputs.data))
#set document(title: "Statement")
#set text(lang: data.lang, font: ("DejaVu Sans", "Noto Sans CJK SC"))
#set page(paper: "a4", footer: context [#data.page_label #counter(page).display() / #counter(page).final().first()])
#image("logo.svg", width: 2cm, alt: "Logo")
= #data.name
#table(columns: 2, table.header[*Date*][*Amount*], ..data.rows.map(r => (r.date, r.amount)).flatten())
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "assets"
    folder.mkdir()
    (folder / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>')
    (tmp_path / "secret.txt").write_text("not for templates")
    return folder


def _text(pdf: bytes) -> str:
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def _data(name: str, rows: int = 3, lang: str = "en") -> dict:
    return {"name": name, "lang": lang, "page_label": "Page",
            "rows": [{"date": f"2026-11-{i % 28 + 1:02d}", "amount": f"{i}.00"} for i in range(rows)]}


def test_a_name_with_markup_or_typst_syntax_prints_as_typed(root: Path) -> None:
    renderer = TypstRenderer(root)
    name = '#strong[Eve] *bold* $x^2$ <label> @ref \\ ) ] #read("../secret.txt")'
    document = renderer.render(STATEMENT, _data(name))
    assert document.pages == 1
    text = _text(document.data)
    assert "#strong[Eve] *bold* $x^2$ <label> @ref \\ ) ]" in text and "not for templates" not in text


def test_a_long_table_runs_over_pages_with_its_header_and_page_x_of_y(root: Path) -> None:
    document = TypstRenderer(root).render(STATEMENT, _data("Alex", rows=120))
    assert document.pages >= 3
    pages = _text(document.data).split("\f")
    assert all("Date" in page for page in pages[:document.pages])  # the header repeated on every page
    assert f"Page 2 / {document.pages}" in pages[1]


def test_an_image_without_alt_text_is_refused_in_the_tagged_archive(root: Path) -> None:
    with pytest.raises(TypstRenderError, match="missing alt text") as refused:
        TypstRenderer(root).render('#set document(title: "T")\n#image("logo.svg")', {}, archive=True)
    assert (refused.value.lineno, refused.value.column) == (2, 2)


def test_the_archive_is_pdf_a_3b_tagged_pdf_ua_1_with_chinese_embedded(root: Path) -> None:
    document = TypstRenderer(root).render(STATEMENT, _data("王小明", lang="zh"), archive=True)
    catalog = PdfReader(BytesIO(document.data)).trailer["/Root"]
    metadata = catalog["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in metadata and b"<pdfaid:conformance>B</pdfaid:conformance>" in metadata
    assert b"<pdfuaid:part>1</pdfuaid:part>" in metadata
    assert "/StructTreeRoot" in catalog and catalog["/MarkInfo"]["/Marked"]
    assert any("CJK" in font for font in pdf_fonts(document.data))
    assert "王小明" in _text(document.data)


def test_files_outside_the_root_and_packages_are_refused(root: Path) -> None:
    renderer = TypstRenderer(root)
    with pytest.raises(TypstRenderError, match="would escape the project root"):
        renderer.render('#read("../secret.txt")', {})
    with pytest.raises(TypstRenderError, match="file not found"):
        renderer.render('#read("/etc/hostname")', {})
    with pytest.raises(TypstProblem, match="packages are not allowed") as refused:
        renderer.render('Hi\n  #import "@preview/cetz:0.3.0"', {})
    assert (refused.value.lineno, refused.value.column) == (2, 11)
    with pytest.raises(TypstProblem, match="file name in quotes"):
        renderer.render('#let p = "x.typ"\n#include p', {})
    assert check_typst_source('#import "parts/header.typ": header\n#include "terms.typ"') == []


def test_the_check_gives_each_problem_its_line_and_column(root: Path) -> None:
    renderer = TypstRenderer(root)
    problems = renderer.check("Hello\n#let x = \n#foo(", {})
    assert [(p.severity, p.line, p.column) for p in problems] == [("error", 2, 9), ("error", 3, 5)]
    sample = {key: value for key, value in _data("Sample").items() if key != "name"}  # lacks a field the template uses
    missing = renderer.check(STATEMENT, sample)
    assert [(p.severity, p.line, p.column) for p in missing] == [("error", 6, 9)] and '"name"' in missing[0].message
    assert renderer.check(STATEMENT, _data("Sample")) == []
    [warning] = renderer.check('#set text(font: "No Such Font")\nHi', {})
    assert (warning.severity, warning.line, warning.column) == ("warning", 1, 17)


def test_a_template_is_compiled_once_and_laid_out_per_document(root: Path) -> None:
    renderer = TypstRenderer(root)
    texts = [_text(renderer.render(STATEMENT, _data(f"Customer {n}")).data) for n in range(3)]
    assert renderer.compilers_made == 1
    assert all(f"Customer {n}" in text for n, text in enumerate(texts))


def test_roots_unused_for_their_time_are_pruned_and_made_again_when_needed(tmp_path: Path) -> None:
    """A render marks its root in use; roots idle longer than the keep are deleted (and
    half-made folders after a day); a pruned root is made again from the same sources."""
    import os
    import time

    from documents.typst_pdf import build_root, prune_roots

    parent = tmp_path / "typst"
    sources = {"doc.typ": '#set page(width: 50mm, height: 30mm)\n#sys.inputs.data'}
    used, idle = build_root(parent, sources), build_root(parent, {"other.typ": "idle"})
    half_made = parent / ".abc.1.2"
    half_made.mkdir()
    long_ago = time.time() - 40 * 86400
    for folder in (used, idle, half_made):
        os.utime(folder, (long_ago, long_ago))
    renderer = TypstRenderer(used)
    assert renderer.render(sources["doc.typ"], "hello").pages == 1  # marks it in use
    assert prune_roots(parent, keep_days=30) == 2
    assert used.is_dir() and not idle.exists() and not half_made.exists()
    again = build_root(parent, {"other.typ": "idle"})
    assert again == idle and (again / "other.typ").read_text() == "idle"
