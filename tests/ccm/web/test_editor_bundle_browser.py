"""The vendored editor bundle (ccm/web/static/vendor/codemirror.js) in a real browser, on a
page of its own: Typst text is highlighted, and setLanguage switches the highlighting
without losing the text, the selection or the diagnostics."""
from __future__ import annotations

from pathlib import Path

import pytest

BUNDLE = Path(__file__).resolve().parents[3] / "ccm" / "web" / "static" / "vendor" / "codemirror.js"

TYPST = """= Terms
// a comment
#let total = 12pt
Hello *world*, see <terms> and @terms.
#set text(lang: "de")
"""

PAGE = """<!doctype html><html lang="en"><body>
<label for="source">Source</label><textarea id="source"></textarea>
</body></html>"""


@pytest.fixture
def editor_page(browser):  # type: ignore[no-untyped-def]
    """A page with the bundle loaded and a typst editor ``window.ed`` over TYPST; page
    errors are collected in ``page.errors``."""
    page = browser.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.set_content(PAGE)
    page.add_script_tag(path=str(BUNDLE))
    page.evaluate(
        """(text) => {
            const area = document.getElementById("source");
            area.value = text;
            window.ed = CCMEditor.create(area, {language: "typst"});
        }""",
        TYPST,
    )
    yield page
    assert page.errors == []
    page.close()


def token_classes(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """{text of a highlighted span: its class} over the editor's lines."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll(".cm-line span")]
            .filter((span) => span.className && span.children.length === 0)
            .map((span) => [span.textContent, span.className]))"""
    )


def wait_for_highlighting(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        """() => [...document.querySelectorAll(".cm-line span")].some((s) => s.textContent === "#let")"""
    )


def test_typst_text_is_highlighted(editor_page):
    page = editor_page
    wait_for_highlighting(page)
    classes = token_classes(page)
    keyword, comment = classes["#let"], classes["// a comment"]
    assert keyword and comment and keyword != comment
    for text in ("= Terms", "12pt", "*world*", "<terms>", "@terms", '"de"', "text"):
        assert classes.get(text), f"{text!r} is not highlighted: {classes}"
    assert classes["12pt"] not in (keyword, comment)
    assert classes['"de"'] not in (keyword, comment, classes["12pt"])
    # Plain text is not inside a highlighted span.
    plain = page.evaluate(
        """() => [...document.querySelectorAll(".cm-line")][3].childNodes[0].nodeType"""
    )
    assert plain == 3  # "Hello " is a text node of the line
    assert page.evaluate("ed.getValue()") == TYPST


def test_set_language_keeps_text_selection_and_diagnostics(editor_page):
    page = editor_page
    wait_for_highlighting(page)
    page.evaluate(
        """() => {
            ed.setDiagnostics([{line: 3, column: 6, message: "unknown variable", severity: "warning"}]);
            ed.view.dispatch({selection: {anchor: 20, head: 25}});
        }"""
    )
    page.locator(".cm-lintRange-warning").wait_for()

    page.evaluate('ed.setLanguage("html")')
    page.wait_for_function(
        """() => ![...document.querySelectorAll(".cm-line span")].some((s) => s.textContent === "#let")"""
    )
    assert page.evaluate("ed.getValue()") == TYPST
    page.evaluate('ed.setLanguage("typst")')
    wait_for_highlighting(page)

    assert page.evaluate("ed.getValue()") == TYPST
    assert page.evaluate("document.getElementById('source').value") == TYPST
    assert page.evaluate("[ed.view.state.selection.main.anchor, ed.view.state.selection.main.head]") == [20, 25]
    assert page.locator(".cm-lintRange-warning").count() == 1
    assert page.locator(".cm-lintRange-warning").inner_text() == "total"
    assert token_classes(page)["#let"]


def test_the_typst_highlighter_never_throws(editor_page):
    page = editor_page
    odd = [
        "#" * 300 + "(" * 300 + "[" * 300 + "/*" * 300,
        '#let s = "never closed\\',
        "```typ\n#let x = 1\nno closing fence",
        "$ a + #f( $ *_`<@ \\u{1F600 ` #{ ] ) } ",
        "#set\n\n\n#show: it => [\n= x\n",
        "\u0000\u00e9\U0001f600 #\u00e9t\u00e9[ok] @\u00e9 <\u00e9>",
    ]
    for text in odd:
        page.evaluate("(text) => ed.setValue(text)", text)
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => done()))")
        assert page.evaluate("ed.getValue()") == text
    page.evaluate("(text) => ed.setValue(text)", TYPST)
    wait_for_highlighting(page)
