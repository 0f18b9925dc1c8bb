"""Bidirectional text in the shipped documents: a customer's string with bidi controls
cannot reverse the text around it (HTML, PDF read back, plain-text e-mail, SMS), and a
right-to-left locale without documents support never gets a garbled one (Arabic and
Hebrew are laid out right to left: test_rtl)."""

from __future__ import annotations

import subprocess

import pytest

from documents import TemplateEnvironment, WeasyPrintRenderer, file_loader, sms_info

from .conftest import TEMPLATES, make_context

RLO, FSI, PDI = "\u202e", "\u2068", "\u2069"
NAME = f"Ann {RLO}Evil"  # would print the rest of the sentence right to left
INSERT = ('<aside class="insert"><p>{{ _("We miss you, %(name)s", name=customer.name) }}. '
          "Your balance is due.</p></aside>\n")


def pdf_text(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True).stdout.decode("utf-8")


@pytest.fixture(scope="module")
def env() -> TemplateEnvironment:
    library = file_loader(TEMPLATES)
    return TemplateEnvironment(lambda name: INSERT if name == "inserts/hello.html" else library(name))


def hostile_context() -> dict:
    context = make_context(lines=3)
    context["customer"]["name"] = NAME
    context["statement"]["lines"][1]["description"] = f"Refund {RLO}ref 42, thank you"
    return context


def test_a_name_with_bidi_controls_cannot_reverse_a_statement_insert(env: TemplateEnvironment,
                                                                       renderer: WeasyPrintRenderer) -> None:
    context = hostile_context()
    insert = env.render("inserts/hello.html", context)
    assert insert.count(f"{FSI}Ann Evil{PDI}") == 1 and RLO not in insert
    context["slots"]["statement.insert"] = insert
    html = env.render("statement/statement.html", context)
    assert RLO not in html
    assert f"{FSI}Refund ref 42, thank you{PDI}" in html

    text = " ".join(pdf_text(renderer.render(html, stylesheets=["assets/statement.css"]).data).split())
    assert "We miss you, Ann Evil. Your balance is due." in text
    assert "Refund ref 42, thank you" in text
    assert "eud si ecnalab" not in text  # what the override made of the insert


def test_plain_text_email_and_sms_isolate_the_name_too(env: TemplateEnvironment) -> None:
    context = hostile_context()
    text = env.render("email/statement_ready.txt", context)
    assert text.startswith(f"Dear {FSI}Ann Evil{PDI},") and RLO not in text
    html = env.render("email/statement_ready.html", context)
    assert f"Dear {FSI}Ann Evil{PDI}," in html and RLO not in html

    sms_env = TemplateEnvironment({"sms.txt": "{{ customer.name }}, your bill is ready."}.get)
    sms = sms_env.render("sms.txt", context)
    assert sms == f"{FSI}Ann Evil{PDI}, your bill is ready."
    assert sms_info(sms).segments == 1


def test_strings_without_controls_are_printed_as_they_are(env: TemplateEnvironment) -> None:
    context = make_context(lines=1)
    context["customer"]["name"] = "Ann Lee"
    assert env.render("email/statement_ready.txt", context).startswith("Dear Ann Lee,")


@pytest.mark.parametrize("locale", ["fa_IR", "ur_PK"])
def test_an_unsupported_right_to_left_locale_gets_an_english_statement_not_a_garbled_one(
        env: TemplateEnvironment, renderer: WeasyPrintRenderer, locale: str) -> None:
    """Right-to-left locales other than Arabic and Hebrew are not supported yet (imports
    refuse them); a customer stored with one before gets dates and amounts in English,
    never 012026/11/30."""
    html = env.render("statement/statement.html", make_context(lines=2), locale=locale)
    assert '<html lang="en" dir="ltr">' in html
    text = pdf_text(renderer.render(html, stylesheets=["assets/statement.css"]).data)
    assert "Nov 1, 2026 – Nov 30, 2026" in text
    assert "December 21, 2026" in text
    assert "$980.15" in text
    assert "2026/11/" not in text
