"""Links in PDFs: every outside ``<a href>`` of a statement (its insert included) becomes a
short tracked link at compose time, recorded with the message; templates get
``short_link(url)`` and ``qr(url)`` for any other URL. Read back from the archived PDF
(pypdf for the link annotations, pdftotext for what is printed) and followed through the app."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from app import create_app
from ccm.models.feedback import ResponseEvent
from ccm.imports import import_customers, import_feed
from ccm.models import Message
from ccm.runs import service
from statement_engines import html_statement

LIBRARY = Path(__file__).resolve().parents[3] / "templates"
PUBLIC = "http://127.0.0.1:8000"
SHORT = re.compile(re.escape(PUBLIC) + r"/s/([0-9a-f]+-\d+-[A-Za-z0-9_-]{10})")
CYCLE = "2026-11"
BROWSER = {"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"}
INSERT = """<aside class="insert insert--paperless">
  <h2>Go paperless</h2>
  <p>Switch at <a href="https://northwind.example/paperless">https://northwind.example/paperless</a>
     or <a href="https://northwind.example/offers/green">read the offer</a>;
     questions: <a href="mailto:billing@northwind.example">billing@northwind.example</a>.</p>
  <p>Our app: {{ short_link("https://northwind.example/app") }}</p>
  <img src="{{ qr("https://northwind.example/app") }}" width="60" height="60" alt="">
</aside>
"""


@pytest.fixture
def statement_with_links(make_settings, tmp_path, customers_file, feed_file):
    """The statement cycle of the six test customers, its paper insert holding links."""
    library = tmp_path / "library"
    shutil.copytree(LIBRARY, library)
    (library / "inserts" / "go_paperless.html").write_text(INSERT, encoding="utf-8")
    app = create_app(make_settings(tmp_path, ccm={"templates_dir": str(library)}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    html_statement(engine)  # the HTML insert's <a href>s (the Typst statement's links: tests/ccm/runs/test_typst_documents.py)
    import_customers(engine.db, customers_file, rejects_dir=tmp_path / "rejects", progress=False)
    import_feed(engine.db, feed_file, rejects_dir=tmp_path / "rejects", progress=False)
    service.run_cycle(engine, "statement", CYCLE, progress=False)
    yield app, engine
    engine.close()


def _printed(engine) -> Message:
    with engine.db.session() as session:
        message = session.scalars(select(Message).where(Message.channel == "print", Message.purpose == "statement",
                                                        Message.state == "sent", Message.decisions["statement.insert"]["content"]
                                                        .as_string() == "inserts/go_paperless.html")).first()
        session.expunge(message)
        return message


def _link_annotations(pdf: Path) -> list[str]:
    uris = []
    for page in PdfReader(pdf).pages:
        for annotation in page.get("/Annots") or []:
            action = annotation.get_object().get("/A")
            if action is not None and "/URI" in action:
                uris.append(str(action["/URI"]))
    return uris


def test_links_in_a_printed_statement_are_short_tracked_links_that_record_the_click(statement_with_links, tmp_path):
    app, engine = statement_with_links
    printed = _printed(engine)
    # the insert's short_link() (the insert renders first), the pay link, the insert's two <a href>
    assert printed.links == ["https://northwind.example/app", "https://northwind.example/pay",
                             "https://northwind.example/paperless", "https://northwind.example/offers/green"]
    (pdf,) = (tmp_path / "var" / "archive").glob(f"*/*/*/m{printed.id:09d}-*.pdf")  # what was printed, as archived

    annotations = _link_annotations(pdf)
    assert "mailto:billing@northwind.example" in annotations  # not a web link: left alone
    outside = [uri for uri in annotations if uri.startswith("http")]
    assert outside and all(SHORT.fullmatch(uri) for uri in outside)  # no untracked web link left in the PDF
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "northwind.example/paperless" not in text and "northwind.example/app" not in text
    printed_codes = SHORT.findall(text)  # the pay link, the URL that was the link's text, the template's short_link()
    assert len(set(printed_codes)) == 3

    client = app.test_client()
    followed = {}
    for code in sorted(set(printed_codes) | {SHORT.fullmatch(uri).group(1) for uri in outside}):
        response = client.get(f"/s/{code}", headers=BROWSER)
        assert response.status_code == 302
        followed[code] = response.headers["Location"]
    assert sorted(followed.values()) == sorted(printed.links)  # each goes only where the message pointed
    with engine.db.session() as session:
        clicks = {(e.type, e.message_id, e.channel, e.data["link"]) for e in session.scalars(select(ResponseEvent))}
    assert clicks == {("clicked", printed.id, "print", position) for position in range(4)}


def test_the_qr_helper_encodes_the_short_tracked_link(statement_with_links):
    from ccm.links import Tracker, qr_data_uri

    app, engine = statement_with_links
    printed = _printed(engine)
    links = Tracker.from_settings(engine.settings).for_message(printed.id)
    links.urls.extend(printed.links)  # the same positions as when it was composed
    short = links.short("https://northwind.example/app")
    assert SHORT.fullmatch(short) and links.urls == printed.links  # nothing new recorded for a URL it has
    assert links.qr("https://northwind.example/app") == qr_data_uri(short)
    assert links.short("mailto:billing@northwind.example") == "mailto:billing@northwind.example"
    assert links.short(short) == short  # the engine's own link is not wrapped twice


TYPST_INSERT = """#import "/typst/ccm.typ": tr, insert, tracked-link, tracked-qr, short-link
#insert(tr("Go paperless"), [Switch at #tracked-link("https://northwind.example/paperless") or
  #tracked-link("https://northwind.example/offers/green")[read the offer]. Our app: #short-link("https://northwind.example/app")
  #tracked-qr("https://northwind.example/app", width: 15mm)], tr("Switch to e-statements"))
"""


def test_links_in_a_typst_statement_are_short_tracked_links_too(make_settings, tmp_path, customers_file, feed_file):
    """The shipped (Typst) statement: addresses a block gives tracked-link, short-link and
    tracked-qr become the message's short tracked links, printed and followed like the HTML
    statement's."""
    library = tmp_path / "library"
    shutil.copytree(LIBRARY, library)
    (library / "inserts" / "go_paperless.typ").write_text(TYPST_INSERT, encoding="utf-8")
    app = create_app(make_settings(tmp_path, ccm={"templates_dir": str(library)}))
    engine = app.extensions["ccm"]
    engine.db.upgrade()
    import_customers(engine.db, customers_file, rejects_dir=tmp_path / "rejects", progress=False)
    import_feed(engine.db, feed_file, rejects_dir=tmp_path / "rejects", progress=False)
    service.run_cycle(engine, "statement", CYCLE, progress=False)
    printed = _printed(engine)
    assert printed.decisions["statement.insert"]["shown"] == "inserts/go_paperless.typ"
    assert set(printed.links) == {"https://northwind.example/pay", "https://northwind.example/paperless",
                                  "https://northwind.example/offers/green", "https://northwind.example/app"}
    (pdf,) = (tmp_path / "var" / "archive").glob(f"*/*/*/m{printed.id:09d}-*.pdf")
    outside = [uri for uri in _link_annotations(pdf) if uri.startswith("http")]
    assert len(outside) == 2 and all(SHORT.fullmatch(uri) for uri in outside)  # the two links, tracked
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "northwind.example/paperless" not in text and "northwind.example/app" not in text and "read the offer" in text
    client = app.test_client()
    for code in set(SHORT.findall(text)) | {SHORT.fullmatch(uri).group(1) for uri in outside}:
        response = client.get(f"/s/{code}", headers=BROWSER)
        assert response.status_code == 302 and response.headers["Location"] in printed.links
    engine.close()
