"""The sandboxed template environment: escapes, errors with locations, escaping, slots, i18n."""

from __future__ import annotations

from pathlib import Path

import pytest

from documents import (RenderError, RenderTimeout, TemplateEnvironment, TemplateSyntaxProblem,
                       file_loader)

TEMPLATES = {
    "page.html": "<p>{{ customer.name }}</p>",
    "page.txt": "{{ customer.name }}",
    "missing.html": "<p>hello</p>\n<p>{{ statement.due_dat }}</p>",
    "broken.html": "line 1\nline 2\n{% if x %}\nunclosed\n",
    "includes_broken.html": "{% include 'broken.html' %}",
    "includes_nothing.html": "\n{% include 'nowhere.html' %}",
    "slot.html": "<div>{{ slot('statement.insert') }}</div>",
    "unknown_slot.html": "{{ slot('nope') }}",
    "hello.txt": "{{ _('Hello %(name)s', name=customer.name) }} ({{ locale }})",
    "loop.txt": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
}

ESCAPES = {
    "mro": "{{ ''.__class__.__mro__ }}",
    "globals": "{{ cycler.__init__.__globals__ }}",
    "format": "{{ '{0.__class__}'.format(customer) }}",
    "format_map": "{{ '{x.__class__}'.format_map({'x': customer}) }}",
    "huge_range": "{% for i in range(10**9) %}{% endfor %}",
    "dict_write": "{{ customer.update({'name': 'x'}) }}",
    "list_write": "{{ statement.lines.append(1) }}",
    "attr_assign": "{% set customer.name = 'x' %}",
    "subclasses": "{{ ().__class__.__base__.__subclasses__() }}",
}

CONTEXT = {"customer": {"name": "<script>alert(1)</script>"}, "statement": {"lines": []},
           "slots": {"statement.insert": "<aside><b>Offer</b></aside>"}}


@pytest.fixture
def env() -> TemplateEnvironment:
    return TemplateEnvironment(TEMPLATES.get, translations={"zh_Hans": {"Hello %(name)s": "你好，%(name)s"}})


@pytest.mark.parametrize("source", ESCAPES.values(), ids=ESCAPES.keys())
def test_sandbox_escapes_are_render_errors(source: str) -> None:
    env = TemplateEnvironment({"evil.html": source}.get)
    with pytest.raises(RenderError) as caught:
        env.render("evil.html", CONTEXT)
    assert caught.value.template == "evil.html"
    assert caught.value.lineno == 1


def test_missing_field_names_field_template_and_line(env: TemplateEnvironment) -> None:
    with pytest.raises(RenderError) as caught:
        env.render("missing.html", CONTEXT)
    error = caught.value
    assert (error.template, error.lineno) == ("missing.html", 2)
    assert error.message == "statement.due_dat is undefined"
    assert str(error) == "missing.html, line 2: statement.due_dat is undefined"


def test_check_reports_syntax_error_line(env: TemplateEnvironment) -> None:
    with pytest.raises(TemplateSyntaxProblem) as caught:
        env.check("broken.html")
    assert caught.value.template == "broken.html"
    assert caught.value.lineno is not None and caught.value.lineno >= 3
    assert "line" in str(caught.value)


def test_check_follows_constant_includes(env: TemplateEnvironment) -> None:
    with pytest.raises(TemplateSyntaxProblem) as caught:
        env.check("includes_broken.html")
    assert caught.value.template == "broken.html"
    with pytest.raises(TemplateSyntaxProblem) as missing:
        env.check("includes_nothing.html")
    assert (missing.value.template, missing.value.lineno) == ("includes_nothing.html", 2)
    assert "nowhere.html" in missing.value.message


def test_syntax_error_at_render_is_a_syntax_problem(env: TemplateEnvironment) -> None:
    with pytest.raises(TemplateSyntaxProblem):
        env.render("broken.html", CONTEXT)


def test_autoescape_on_for_html_off_for_txt(env: TemplateEnvironment) -> None:
    assert env.render("page.html", CONTEXT) == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert env.render("page.txt", CONTEXT) == "<script>alert(1)</script>"


def test_slot_is_trusted_html_and_unknown_slot_fails(env: TemplateEnvironment) -> None:
    assert env.render("slot.html", CONTEXT) == "<div><aside><b>Offer</b></aside></div>"
    with pytest.raises(RenderError, match="unknown slot 'nope'"):
        env.render("unknown_slot.html", CONTEXT)


def test_gettext_uses_the_negotiated_catalog(env: TemplateEnvironment) -> None:
    context = {"customer": {"name": "Li"}}
    assert env.render("hello.txt", context, locale="zh-CN") == "你好，Li (zh_Hans_CN)"
    assert env.render("hello.txt", context, locale="en_GB") == "Hello Li (en_GB)"


def test_render_timeout() -> None:
    env = TemplateEnvironment(TEMPLATES.get, render_timeout=0.2)
    with pytest.raises(RenderTimeout) as caught:
        env.render("loop.txt", {})
    assert caught.value.template == "loop.txt"


def test_compiled_templates_are_cached_until_cleared() -> None:
    sources = {"a.txt": "one"}
    calls: list[str] = []

    def loader(name: str) -> str | None:
        calls.append(name)
        return sources.get(name)

    env = TemplateEnvironment(loader)
    assert env.render("a.txt", {}) == env.render("a.txt", {}) == "one"
    assert calls == ["a.txt"]
    sources["a.txt"] = "two"
    assert env.render("a.txt", {}) == "one"
    env.clear_cache()
    assert env.render("a.txt", {}) == "two"


def test_unknown_template_is_a_render_error(env: TemplateEnvironment) -> None:
    with pytest.raises(RenderError, match="not found"):
        env.render("nowhere.html", {})


def test_file_loader_refuses_names_escaping_root(tmp_path: Path) -> None:
    root = tmp_path / "templates"
    root.mkdir()
    (root / "ok.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    load = file_loader(root)
    assert load("ok.txt") == "fine"
    for name in ("../secret.txt", "/etc/passwd", "link.txt", "a/../../secret.txt", "", "nope.txt"):
        assert load(name) is None, name


@pytest.mark.parametrize("source", [
    "{{ name|number }}", "{{ name|date }}", "{{ name|money('USD') }}", "{{ name|int(strict=True) + name|int }}",
    "{{ (name ~ '')[100] }}", "{{ name.split()[0] / 2 }}",
])
def test_render_errors_never_quote_customer_data(source: str) -> None:
    """A failing expression's message lands in the outbox and the logs: no personal data."""
    env = TemplateEnvironment({"t.txt": source}.get)
    with pytest.raises(RenderError) as caught:
        env.render("t.txt", {"name": "Jane Q. Doe"})
    assert "Jane" not in str(caught.value)
    assert "t.txt, line 1" in str(caught.value)


@pytest.mark.parametrize("source", [
    '{{ "a" * 2000000000 }}', "{{ [1] * 2000000000 }}", "{{ 2000000000 * 'ab' }}", "{{ 2 ** 100000000 }}",
    '{% set s = "a" * 900000 %}{{ s + s }}', '{{ ""|center(2000000000) }}', '{{ "a"|indent(2000000000) }}',
    '{{ "%2000000000d"|format(1) }}', '{{ "%.2000000000f"|format(1) }}',
])
def test_values_too_big_to_build_are_refused_before_memory_runs_out(source: str) -> None:
    env = TemplateEnvironment({"t.txt": source}.get)
    with pytest.raises(RenderError, match="refused"):
        env.render("t.txt", {})


def test_ordinary_arithmetic_still_works() -> None:
    source = "{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ 1.5 * 2 }} {{ [1] + [2] }} {{ 'x' + 'y' }} {{ '%5.1f'|format(2) }} {{ 'a'|center(3) }}"
    env = TemplateEnvironment({"t.txt": source}.get)
    assert env.render("t.txt", {}) == "1024 ababab 3.0 [1, 2] xy   2.0  a "
