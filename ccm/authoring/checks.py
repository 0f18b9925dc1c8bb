"""Validation on save: everything a run would trip over, found before a run, each
problem with its line and column.

1. Jinja syntax (and unknown filters, which Jinja finds when compiling);
2. the tree (``jinja_checks``): only names the document kind provides, known fields,
   known slots and included templates, nothing the sandbox would refuse;
3. for HTML, CSS and SVG, external resources only from allowed assets (``resources``);
4. a render with sample data in the sandbox: for SMS the encoding and segment count
   (a warning above ``[authoring] sms_max_segments``), for e-mail a subject and a
   plain-text alternative.

A Typst template (``.typ``) is checked by compiling it with the sample data instead
(``ccm.authoring.typst_checks``).
"""
from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import nodes

from ccm.authoring.context import context_schema, sample_context
from ccm.authoring.jinja_checks import TreeChecker
from ccm.authoring.problems import Problem, column_of, errors
from ccm.authoring.resources import check_resources
from ccm.authoring.typst_checks import check_typst
from documents import (RenderError, TemplateEnvironment, TemplateSyntaxProblem, parse_po, parse_template,
                       refused_constants, sms_info)

MARKUP_SUFFIXES = (".html", ".htm", ".css", ".svg", ".xml")
SAMPLE_LOCALES = ("en_US", "zh_CN")

@dataclass
class Library:
    """The templates a template may refer to: name -> (kind, source)."""

    sources: dict[str, str]
    kinds: dict[str, str]
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)

    def with_version(self, name: str, kind: str, source: str, meta: Mapping[str, Any]) -> "Library":
        return Library({**self.sources, name: source}, {**self.kinds, name: kind}, {**self.meta, name: dict(meta)})

    def loader(self, name: str) -> str | None:
        return self.sources.get(name)

    def translations(self) -> dict[str, dict[str, str]]:
        result = {}
        for name, source in self.sources.items():
            if name.startswith("i18n/") and name.endswith(".po"):
                try:
                    result[posixpath.splitext(posixpath.basename(name))[0]] = parse_po(source)
                except Exception:  # noqa: BLE001 - a broken catalog is reported on its own save
                    continue
        return result

def validate(name: str, kind: str, source: str, meta: Mapping[str, Any], library: Library,
             settings: Mapping[str, Any]) -> list[Problem]:
    """Every problem of ``source`` as template ``name`` of ``kind``; errors block a save."""
    library = library.with_version(name, kind, source, meta)
    if name.endswith(".po"):
        return _check_catalog(name, source)
    if name.endswith(".typ"):
        return check_typst(name, kind, meta, library.sources, library.kinds, library.translations(), settings)
    problems = _check_jinja(name, kind, source, meta, library)
    if name.endswith(MARKUP_SUFFIXES):
        base = posixpath.dirname(name) if name.endswith((".css", ".svg")) else ""
        hosts = list(settings.get("authoring", {}).get("asset_hosts", []))
        problems += check_resources(name, source, is_asset=lambda p: posixpath.normpath(posixpath.join(base, p)) in library.sources,
                                    hosts=hosts)
    if errors(problems) or kind in ("partial", "asset"):
        return problems
    return problems + _check_by_rendering(name, kind, meta, library, settings)

def _check_catalog(name: str, source: str) -> list[Problem]:
    try:
        parse_po(source)
    except Exception as exc:  # noqa: BLE001 - Babel raises several kinds
        return [Problem(name, 1, 1, f"translation catalog: {exc}")]
    return []

def _check_jinja(name: str, kind: str, source: str, meta: Mapping[str, Any], library: Library) -> list[Problem]:
    try:
        tree = parse_template(source, name)  # compiled as the sandbox does: nothing evaluated yet
    except TemplateSyntaxProblem as exc:
        line, column = column_of(source, exc.lineno)
        return [Problem(name, line, column, f"syntax: {exc.message}")]
    checker = TreeChecker(name, source, context_schema(kind), slots=list(meta.get("slots") or []),
                          exists=lambda other: other in library.sources)
    return checker.check(tree) + _refused_constants(name, source, tree)

def _refused_constants(name: str, source: str, tree: nodes.Template) -> list[Problem]:
    """Constant expressions a render would refuse (``"a" * 10**9``), evaluated under its limits."""
    problems = []
    for node, reason in refused_constants(tree):
        needle = {nodes.Filter: getattr(node, "name", None), nodes.Concat: "~"}.get(type(node), getattr(node, "operator", None))
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            needle = node.node.attr
        line, column = column_of(source, node.lineno, needle)
        problems.append(Problem(name, line, column, f"the sandbox refuses this expression: {reason}"))
    return problems

def _check_by_rendering(name: str, kind: str, meta: Mapping[str, Any], library: Library,
                        settings: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    env = TemplateEnvironment(library.loader, translations=library.translations())
    source = library.sources[name]
    limit = int(settings.get("authoring", {}).get("sms_max_segments", 2))
    for locale in SAMPLE_LOCALES:
        context = sample_context(settings.get("company", {}), locale=locale, channel=_channel(kind))
        context["slots"] = {slot: "<aside>sample block</aside>" for slot in meta.get("slots") or []}
        try:
            text = env.render(name, context, locale=locale, timezone=context["customer"]["timezone"])
        except RenderError as exc:
            line, column = column_of(library.sources.get(exc.template or name, source), exc.lineno)
            where = name if (exc.template or name) == name else exc.template
            if "attributes." in exc.message and "undefined" in exc.message:
                problems.append(Problem(where, line, column, f"{exc.message} in the sample data: a customer without this "
                                                             "custom attribute fails (guard it with 'is defined')", "warning"))
            else:
                problems.append(Problem(where, line, column, f"rendering the sample ({locale}) fails: {exc.message}"))
            break
        if kind == "sms":
            problems += _sms_problems(name, text.strip(), locale, limit)
        elif kind in ("email_subject", "email_text") and not text.strip():
            problems.append(Problem(name, 1, 1, f"renders empty for the sample ({locale})"))
    if kind == "email_html":
        problems += _email_parts(name, library)
    return problems

def _sms_problems(name: str, text: str, locale: str, limit: int) -> list[Problem]:
    info = sms_info(text)
    summary = f"sample ({locale}): {info.encoding}, {info.units} characters, {info.segments} segment(s)"
    if info.segments > limit:
        return [Problem(name, 1, 1, f"{summary}, above the limit of {limit} ([authoring] sms_max_segments)", "warning")]
    return [Problem(name, 1, 1, summary, "info")]

def email_parts(name: str) -> dict[str, str]:
    """The subject and plain-text templates that go with an HTML e-mail ``x.html``."""
    stem = name[: -len(".html")] if name.endswith(".html") else name
    return {"subject": f"{stem}.subject.txt", "html": f"{stem}.html", "text": f"{stem}.txt"}

def _email_parts(name: str, library: Library) -> list[Problem]:
    parts = email_parts(name)
    return [Problem(name, 1, 1, f"an e-mail needs a {part}: add the template {parts[part]}")
            for part in ("subject", "text") if parts[part] not in library.sources]

def _channel(kind: str) -> str:
    return {"sms": "sms", "email_subject": "email", "email_html": "email", "email_text": "email"}.get(kind, "print")
