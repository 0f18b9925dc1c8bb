"""Every template in library.toml checks and renders, in English and Chinese."""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal

import jinja2
import pytest

from documents import TemplateEnvironment, load_po, sms_info

from .conftest import TEMPLATES, library, make_context, render_for

ENTRIES = library()
NAMES = [entry["name"] for entry in ENTRIES if not entry["name"].endswith(".typ")]  # Jinja templates
RENDERABLE = [entry["name"] for entry in ENTRIES if entry["kind"] != "partial" and entry["name"] in NAMES]
TYPST = [entry["name"] for entry in ENTRIES if entry["name"].endswith(".typ") and entry["name"] != "typst/blocks.typ"]
TR = re.compile(r'\btr\(\s*"((?:[^"\\]|\\.)*)"')
KINDS = {"statement", "bill", "insert", "legal", "offer", "email_html", "email_text", "email_subject", "sms", "partial"}


def test_manifest_is_well_formed() -> None:
    assert TYPST and "statement/statement.typ" in TYPST
    for entry in ENTRIES:
        assert (TEMPLATES / entry["name"]).is_file(), entry["name"]
        assert entry["kind"] in KINDS and entry["title"]
        for sheet in entry["stylesheets"]:
            assert (TEMPLATES / sheet).is_file(), sheet
    assert {"statement", "bill", "insert", "email_html", "email_text", "email_subject", "sms"} <= {
        entry["kind"] for entry in ENTRIES}


@pytest.mark.parametrize("name", NAMES)
def test_template_passes_check(env: TemplateEnvironment, name: str) -> None:
    env.check(name)


@pytest.mark.parametrize("chinese", [False, True], ids=["en", "zh"])
@pytest.mark.parametrize("name", RENDERABLE)
def test_template_renders(env: TemplateEnvironment, name: str, chinese: bool) -> None:
    output = render_for(env, name, make_context(chinese=chinese))
    assert output.strip()
    if chinese and not name.startswith("sms/"):
        assert any("\u4e00" <= char <= "\u9fff" for char in output)


@pytest.mark.parametrize("language", ["zh_Hans", "ar", "he"])
def test_every_string_is_translated(language: str) -> None:
    catalog = load_po(TEMPLATES / "i18n" / f"{language}.po")
    parser = jinja2.Environment()
    seen: set[str] = set()
    for name in NAMES:
        tree = parser.parse((TEMPLATES / name).read_text("utf-8"))
        for call in tree.find_all(jinja2.nodes.Call):
            if isinstance(call.node, jinja2.nodes.Name) and call.node.name == "_" and call.args:
                seen.add(call.args[0].value)
    assert len(seen) > 30
    for name in TYPST:  # tr("...") in the Typst templates
        seen.update(text.replace('\\"', '"') for text in TR.findall((TEMPLATES / name).read_text("utf-8")))
    assert seen <= set(catalog), sorted(seen - set(catalog))


@pytest.mark.parametrize("chinese", [False, True], ids=["en", "zh"])
@pytest.mark.parametrize("name", TYPST)
def test_typst_template_compiles_and_renders(env: TemplateEnvironment, name: str, chinese: bool) -> None:
    from documents.typst_pdf import TypstRenderer

    context = make_context(chinese=chinese)
    context["slots"] = {"statement.insert": "inserts/premium_upgrade.typ"}
    data = env.typst_data(context, locale=context["customer"]["locale"], timezone=context["customer"]["timezone"])
    renderer = TypstRenderer(TEMPLATES)
    source = (TEMPLATES / name).read_text("utf-8")
    assert [p for p in renderer.check(source, data, template=name) if p.severity == "error"] == []
    text = subprocess.run(["pdftotext", "-", "-"], input=renderer.render(source, data, template=name).data,
                          capture_output=True, check=True).stdout.decode()
    if chinese and name != "typst/ccm.typ":
        assert any("\u4e00" <= char <= "\u9fff" for char in text)


@pytest.mark.parametrize("name", ["sms/statement_ready.txt", "sms/payment_due.txt"])
def test_sms_fits_one_gsm_segment_in_english(env: TemplateEnvironment, name: str) -> None:
    text = render_for(env, name, make_context())
    info = sms_info(text)
    assert (info.encoding, info.segments) == ("GSM-7", 1), text
    assert "$980.15" in text and "\n" not in text


@pytest.mark.parametrize("name", ["statement/statement.html", "bill/bill.html", "email/statement_ready.html"])
def test_hostile_values_are_escaped(env: TemplateEnvironment, name: str) -> None:
    context = make_context()
    context["customer"]["name"] = "<script>alert('x')</script> 😀"
    context["statement"]["amount_due"] = Decimal("9999999999.99")
    output = render_for(env, name, context)
    assert "<script>" not in output and "&lt;script&gt;" in output
    assert "$9,999,999,999.99" in output


def test_text_templates_are_not_escaped(env: TemplateEnvironment) -> None:
    context = make_context()
    context["customer"]["name"] = "Tom & Jerry <Ltd>"
    assert "Tom & Jerry <Ltd>" in render_for(env, "email/statement_ready.txt", context)


@pytest.mark.parametrize("name", ["email/statement_ready.html", "email/statement_ready.txt"])
def test_email_says_attached_or_links(env: TemplateEnvironment, name: str) -> None:
    context = make_context()
    context["attachment"] = True
    attached = render_for(env, name, context)
    assert "attached" in attached and "https://acme.example/s/abc" not in attached
    context["attachment"] = False
    assert "https://acme.example/s/abc" in render_for(env, name, context)
    context["links"] = {"statement": None}
    neither = render_for(env, name, context)
    assert "attached" not in neither and "https://" not in neither


def test_email_html_carries_its_stylesheet(env: TemplateEnvironment) -> None:
    html = render_for(env, "email/statement_ready.html", make_context())
    assert "@media only screen" in html and "!important" in html and "&gt;" not in html
