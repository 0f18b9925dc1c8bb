"""Limits of the sandbox: no template builds a huge value or document, neither while it is
compiled or checked nor while it renders; each is refused at its line, in a few MB."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from documents import OutputTooLarge, RenderError, TemplateEnvironment, parse_template, refused_constants

PEAK_LIMIT = 50_000_000  # bytes; the attacks below would take gigabytes


@contextmanager
def peak_memory() -> Iterator[Callable[[], int]]:
    """The peak of Python allocations inside the block, in bytes."""
    tracemalloc.start()
    try:
        yield lambda: tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


HUGE_VALUES = {
    "string times": '{{ "a" * 10**9 }}',
    "center": '{{ "x"|center(10**9) }}',
    "nested folding": '{{ ("ab" * 10**3) * 10**5 }}',
    "concat of big parts": '{{ "x"|center(999999) ~ "x"|center(999999) ~ "x"|center(999999) }}',
    "printf width": '{{ "%200000000d" % 1 }}',
    "gettext width": '{{ _("%(n)200000000s", n=1) }}',
    "str.format": '{{ "{0:>200000000}".format(1) }}',
    "ljust": '{{ "x".ljust(10**9) }}',
    "replace grows": '{{ "x"|center(999999)|replace(" ", "          ") }}',
    "printing shared refs": '{% set s = "x"|center(999999) %}{{ ([s] * 999)|string }}',
    "joining shared refs": '{% set s = "x"|center(999999) %}{{ ([s] * 999)|join }}',
    "json of shared refs": '{% set s = "x"|center(999999) %}{{ ([s] * 999)|tojson }}',
    "urlencode chain": '{{ "x"|center(999999)|urlencode|urlencode|urlencode }}',
    "batch fill": '{{ [1]|batch(100000000, "x")|list|length }}',
    "huge integer": "{{ ((10**1000)**1000)**1000 }}",
    "squaring": "{% set n = 10**1000 %}{{ n * n * n * n * n * n * n * n * n * n * n * n * n * n * n * n * n * n * n * n }}",
    "namespace growth": ('{% set ns = namespace(s="") %}{% for i in range(1000) %}'
                         '{% set ns.s = ns.s ~ "x"|center(999999) %}{% endfor %}'),
}


@pytest.mark.parametrize("source", HUGE_VALUES.values(), ids=HUGE_VALUES.keys())
def test_huge_values_are_refused_at_their_line_in_a_few_mb(source: str) -> None:
    env = TemplateEnvironment({"t.txt": "intro\n" + source}.get)
    with peak_memory() as peak, pytest.raises(RenderError, match="refused") as caught:
        env.render("t.txt", {})
    assert peak() < PEAK_LIMIT
    assert (caught.value.template, caught.value.lineno) == ("t.txt", 2)


CONSTANT_BOMBS = {
    "string times": ('{{ "a" * 10**9 }}', "a value longer than 1,000,000 refused"),
    "center": ('{{ "x"|center(10**9) }}', "a width above 1,000,000 refused"),
    "nested folding": ('{{ ("ab" * 10**3) * 10**5 }}', "a value longer than 1,000,000 refused"),
    "in a macro": ('{% macro m() %}{{ "x".ljust(10**9) }}{% endmacro %}', "a width above 1,000,000 refused"),
    "in a set": ('{% set big = "x" ~ "y" * 10**9 %}', "a value longer than 1,000,000 refused"),
}


@pytest.mark.parametrize(("source", "reason"), CONSTANT_BOMBS.values(), ids=CONSTANT_BOMBS.keys())
def test_compiling_folds_nothing_and_constant_bombs_are_found_under_the_limits(source: str, reason: str) -> None:
    """Jinja folds constants while compiling; here compiling builds nothing, and the
    check evaluates constants under the same limits as a render."""
    with peak_memory() as peak:
        tree = parse_template("intro\n" + source, "t.html")
        refused = refused_constants(tree)
    assert peak() < PEAK_LIMIT
    assert [(node.lineno, message) for node, message in refused] == [(2, reason)]


def test_constants_within_the_limits_are_fine() -> None:
    tree = parse_template('{{ "ab" * 3 }} {{ "x"|center(5) }} {{ 2 ** 10 }} {{ "a" ~ "b" }} {{ "%5.1f" % 2 }}', "t.txt")
    assert refused_constants(tree) == []


LOOPS = {
    "document": '{% for i in range(100000) %}{{ "x" * 1000 }}{% endfor %}',
    "plain text": "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
    "macro": ('{% macro m() %}{% for i in range(100000) %}{{ "x" * 1000 }}{% endfor %}{% endmacro %}'
              "{% set kept = m() %}"),
    "captures": '{% for i in range(100000) %}{% set kept %}{{ "x" * 1000 }}{% endset %}{% endfor %}',
    "call block": ('{% macro wrap() %}{{ caller() }}{% endmacro %}'
                   '{% for i in range(100000) %}{% call wrap() %}{{ "x" * 1000 }}{% endcall %}{% endfor %}'),
}


@pytest.mark.parametrize("source", LOOPS.values(), ids=LOOPS.keys())
def test_a_loop_writing_without_end_is_refused_at_the_output_limit(source: str) -> None:
    env = TemplateEnvironment({"t.txt": "intro\n" + source}.get, render_timeout=60)
    with peak_memory() as peak, pytest.raises(OutputTooLarge) as caught:
        env.render("t.txt", {})
    assert peak() < PEAK_LIMIT
    assert caught.value.template == "t.txt"
    assert caught.value.lineno == 2
    assert "output above 20,000,000 characters refused" in str(caught.value)


def test_the_output_limit_is_a_setting_of_the_environment() -> None:
    source = "{% for i in range(n) %}{{ 'x' * 100 }}{% endfor %}"
    env = TemplateEnvironment({"t.txt": source}.get, max_output=1_000)
    assert len(env.render("t.txt", {"n": 10})) == 1_000
    with pytest.raises(OutputTooLarge, match="output above 1,000 characters refused"):
        env.render("t.txt", {"n": 11})


def test_ordinary_templates_are_untouched_by_the_limits() -> None:
    source = ('{% macro row(x) %}<{{ x }}>{% endmacro %}{% set cap %}[{{ "a" ~ 1 }}]{% endset %}'
              '{{ cap }}{% for i in range(3) %}{{ row(i) }}{% endfor %}{{ ["a", "b"]|join(",") }}'
              '{{ "a-b"|replace("-", "+") }}{{ "%03d" % 7 }}{{ "ab".upper() }}{{ [1, 2] }}')
    env = TemplateEnvironment({"t.html": source}.get)
    assert env.render("t.html", {}) == "[a1]<0><1><2>a,ba+b007AB[1, 2]"
