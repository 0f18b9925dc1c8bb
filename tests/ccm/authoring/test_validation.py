"""Validation on save: every problem with line and column; unknown fields, slots and
blocks; the SSTI corpus refused at save and harmless in the sandbox; external resources;
SMS segments; e-mail parts."""
from __future__ import annotations

import datetime as dt
import tracemalloc
from decimal import Decimal

import pytest

from ccm.authoring import workflow
from ccm.authoring.store import library as store_library
from ccm.authoring.context import sample_context
from ccm.authoring.problems import errors
from ccm.authoring.checks import validate
from documents import TemplateEnvironment, TemplateProblem

from .conftest import ssti_corpus

INSERT = "inserts/winback_offer.html"


@pytest.fixture
def check(store):
    """``check(source, name=INSERT, kind="insert", meta=None, settings=None)`` -> problems."""

    def run(source, name=INSERT, kind="insert", meta=None, **settings):
        with store.db.session() as session:
            library = store_library(session)
        merged = {**store.settings, **settings}
        return validate(name, kind, source, meta or {}, library, merged)

    return run


def test_a_template_using_an_unknown_field_is_refused_with_line_and_column(ccm, write):
    source = '<aside>\n  <p>{{ _("Hello") }}</p>\n  <p>Due: {{ statement.amount_due | money(statement.curency) }}</p>\n</aside>\n'
    result = ccm("templates", "edit", INSERT, "--file", str(write(source)))
    assert result.exit_code == 1
    assert (f"{INSERT}, line 3, column 43: error: statement.curency is not a known field (did you mean 'currency'?)"
            in result.output)
    assert result.output.strip().splitlines()[-1] == f"Error: {INSERT}: 1 error(s), nothing saved"


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ custmer.name }}", "line 1, column 4: error: unknown name 'custmer' (did you mean 'customer'?)"),
    ("x\n{% for line in statement.lines %}\n {{ line.descripton }}{% endfor %}",
     "line 3, column 5: error: line.descripton is not a known field (did you mean 'description'?)"),
    ("{{ customer.address.zip }}", "line 1, column 4: error: customer.address.zip is not a known field"),
    ("a\n\n{% if x %}\n{{ customer.name }", "line 4, column 1: error: syntax: unexpected '}'"),
    ("{{ statement.due_date | dte }}", "line 1, column 1: error: syntax: No filter named 'dte'."),
    ('{{ slot("statement.footer") }}', "line 1, column 10: error: unknown slot 'statement.footer' (this template declares: none)"),
    ('{% include "inserts/nope.html" %}', "line 1, column 13: error: unknown block or template 'inserts/nope.html'"),
    ("{{ customer.name | safe }}", "line 1, column 20: error: filter 'safe' is not allowed"),
])
def test_each_problem_names_line_and_column(check, source, expected):
    found = [str(p) for p in errors(check(source))]
    assert any(expected in line for line in found), found


def test_names_bound_by_loops_macros_and_set_are_known(check):
    source = ("{% macro row(label, value) %}<tr><td>{{ label }}</td><td>{{ value }}</td></tr>{% endmacro %}\n"
              "{% set total = statement.amount_due %}\n"
              "{% for line in statement.lines %}{{ row(line.description, line.amount | money(statement.currency)) }}"
              "{{ loop.index }}{% endfor %}\n{{ total | money(statement.currency) }} {{ customer.attributes.get('plan', '') }}\n")
    assert errors(check(source)) == []


def test_the_shipped_library_validates_without_errors(store):
    with store.db.session() as session:
        versions = [t.versions[-1] for t in session.scalars(workflow.select(workflow.Template))]
        problems = [p for v in versions for p in errors(workflow.check(session, store.settings, v))]
    assert problems == []


BOMBS = {
    "string times": ('{{ "a" * 10**9 }}', 8, "a value longer than 1,000,000 refused"),
    "center": ('{{ "x"|center(10**9) }}', 8, "a width above 1,000,000 refused"),
    "nested folding": ('{{ ("ab" * 10**3) * 10**5 }}', 10, "a value longer than 1,000,000 refused"),
    "concatenation": ('{{ "x"|center(999999) ~ "x"|center(999999) ~ "y" }}', 23, "a value longer than 1,000,000 refused"),
}


@pytest.mark.parametrize(("name", "kind"), [(INSERT, "insert"), ("sms/payment_due.txt", "sms"),
                                            ("partials/print.html", "partial")])
@pytest.mark.parametrize(("bomb", "column", "reason"), BOMBS.values(), ids=BOMBS.keys())
def test_constant_expressions_building_huge_values_are_refused_at_save_in_a_few_mb(check, name, kind, bomb, column,
                                                                                     reason):
    """Jinja's constant folding would build these while compiling (gigabytes, seconds)."""
    tracemalloc.start()
    try:
        found = [str(p) for p in errors(check(f"Hello\n{bomb}\n", name=name, kind=kind))]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000
    assert found == [f"{name}, line 2, column {column}: error: the sandbox refuses this expression: {reason}"]


@pytest.mark.parametrize("payload", ssti_corpus())
def test_ssti_payloads_are_refused_at_save_and_harmless_in_the_sandbox(check, store, payload):
    found = errors(check(f"<aside>\n{payload}\n</aside>\n"))
    assert found, f"not refused: {payload}"
    assert all(p.line == 2 and p.column >= 1 for p in found)

    context = sample_context(store.settings["company"])
    env = TemplateEnvironment({"t.html": payload}.get)
    try:
        output = env.render("t.html", context)
    except TemplateProblem:
        return  # refused while rendering: harmless
    for marker in ("<class", "function", "module", "built-in", "root:", "Popen", "environ", "uid="):
        assert marker not in output, (payload, output[:200])


def test_file_urls_and_unknown_hosts_are_refused_and_library_assets_allowed(check):
    found = [str(p) for p in errors(check('<aside>\n  <img src="file:///etc/passwd">\n</aside>\n'))]
    assert found == [f"{INSERT}, line 2, column 12: error: file: URLs are refused ('file:///etc/passwd'); use an asset of the library"]
    remote = '<aside><img src="https://cdn.example.com/a.png"><p style="background: url(\'../../etc/x.png\')">x</p></aside>'
    messages = [p.message for p in errors(check(remote))]
    assert any("host cdn.example.com is not in [authoring] asset_hosts" in m for m in messages)
    assert any("without '..'" in m for m in messages)
    allowed = check(remote.replace("../../etc/x.png", "assets/logo.svg"), authoring={"asset_hosts": ["cdn.example.com"],
                                                                                      "sms_max_segments": 2})
    assert errors(allowed) == []
    assert errors(check('<aside><img src="assets/logo.svg"><img src="data:image/png;base64,AAAA"></aside>')) == []
    assert errors(check('<aside><img src="{{ customer.attributes.photo }}"></aside>'))[0].message.startswith("resource URL")
    assert "scripts are not allowed" in errors(check("<aside><script>alert(1)</script></aside>"))[0].message
    assert errors(check('<a href="javascript:alert(1)">x</a>'))[0].message.startswith("link to a javascript: URL")


def test_the_composers_link_helpers_are_known_and_qr_of_a_fixed_url_is_an_engine_resource(check):
    """short_link() and qr() are what a run's composer offers paper documents: a template using
    them passes the checks (the library sync runs them too)."""
    good = ('<aside><p>{{ short_link("https://northwind.example/app") }}</p>\n'
            '<img src="{{ qr("https://northwind.example/app") }}" alt=""></aside>')
    assert errors(check(good)) == []
    computed = '<aside>\n<img src="{{ qr(customer.attributes.url) }}" alt=""></aside>'
    assert [p.message for p in errors(check(computed))] == [
        "resource URL '{{ qr(customer.attributes.url) }}' is computed; resources must be fixed asset paths"]
    hidden = '<aside>\n<img src="{{ qr("https://a.example") }}https://tracker.example/p.png"></aside>'
    assert errors(check(hidden))[0].message.startswith("resource URL '{{ qr(")


def test_sms_reports_encoding_and_segments_and_warns_above_the_limit(check, store):
    short = check('{{ customer.name }}: {{ statement.amount_due | money(statement.currency) }} due.', name="sms/new.txt", kind="sms")
    assert [p.severity for p in short] == ["info", "info"]
    assert "GSM-7" in short[0].message and "1 segment(s)" in short[0].message
    assert "UCS-2" in short[1].message  # the Chinese sample
    long = check("{{ customer.name }} " + "x" * 400, name="sms/new.txt", kind="sms")
    warnings = [p for p in long if p.severity == "warning"]
    assert warnings and "3 segment(s), above the limit of 2" in warnings[0].message
    assert (warnings[0].line, warnings[0].column) == (1, 1)


def test_an_email_needs_a_subject_and_a_plain_text_alternative(check):
    html = "<html><body><p>{{ customer.name }}</p></body></html>"
    messages = [p.message for p in errors(check(html, name="email/welcome.html", kind="email_html"))]
    assert messages == ["an e-mail needs a subject: add the template email/welcome.subject.txt",
                        "an e-mail needs a text: add the template email/welcome.txt"]
    assert errors(check(html, name="email/statement_ready.html", kind="email_html")) == []
    empty = errors(check("{% if false %}x{% endif %}", name="email/statement_ready.subject.txt", kind="email_subject"))
    assert "renders empty" in empty[0].message


def test_a_letter_has_no_statement_in_its_context(check):
    found = errors(check("<p>{{ statement.amount_due }}</p>", name="letters/x.html", kind="letter"))
    assert "unknown name 'statement'" in found[0].message


def test_sample_data_is_complete_for_the_statement_shape(store):
    context = sample_context(store.settings["company"])
    assert isinstance(context["statement"]["amount_due"], Decimal)
    assert isinstance(context["statement"]["due_date"], dt.date)


@pytest.mark.parametrize("markup, refusal", [
    ('<aside><{{ "link" }} rel="attachment" href="file:///etc/passwd"></aside>', "tag names must be written out"),
    ('<aside><a rel="attachment" href="/etc/passwd">terms</a></aside>', "must be relative to the library"),
    ('<aside><a rel="nofollow attachment" href="file:///etc/passwd">x</a></aside>', "file: URLs are refused"),
])
def test_attachments_and_computed_tags_are_resources_too(check, markup, refusal):
    messages = [p.message for p in errors(check(markup))]
    assert any(refusal in m for m in messages), messages
