"""Save-time checks of a Typst template (``.typ``): refusals (packages, import paths made
at run time), then the template compiled with sample data in each sample locale, in a root
made of the library as the save would leave it; every problem at its line and column.

A Typst root is a folder (``documents.build_root``) under ``<var_dir>/typst``; its
renderer is kept per root, so checking the same library again reuses the compiler."""
from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ccm.authoring.context import sample_context
from ccm.authoring.problems import Problem
from documents import TemplateEnvironment
from documents.typst_pdf import BLOCKS, TypstRenderer, build_root, prune_roots

SAMPLE_LOCALES = ("en_US", "zh_CN")  # as the Jinja checks render them

_renderers: dict[Path, TypstRenderer] = {}
_lock = threading.Lock()


def typst_blocks(sources: Mapping[str, str], kinds: Mapping[str, str]) -> list[str]:
    """The Typst content blocks among ``sources``: what a slot of a Typst document may show."""
    from ccm.authoring.store import BLOCK_KINDS  # (the store imports these checks)

    return sorted(name for name in sources if name.endswith(".typ") and kinds.get(name) in BLOCK_KINDS)


def renderer_for(settings: Mapping[str, Any], sources: Mapping[str, str], kinds: Mapping[str, str]) -> TypstRenderer:
    """The renderer of the Typst root holding ``sources`` (kept per root)."""
    ccm = settings.get("ccm", {})
    root = build_root(Path(ccm.get("var_dir", "var")) / "typst", sources, blocks=typst_blocks(sources, kinds),
                      assets_dir=ccm.get("templates_dir", "templates"))
    with _lock:
        if root not in _renderers:
            _renderers[root] = TypstRenderer(root)
        return _renderers[root]


def prune_typst_roots(settings: Mapping[str, Any]) -> int:
    """Delete the Typst roots not used for ``[pdf] typst_keep_days`` (made again when needed)."""
    ccm = settings.get("ccm", {})
    return prune_roots(Path(ccm.get("var_dir", "var")) / "typst", float(settings["pdf"]["typst_keep_days"]))


def check_typst(name: str, kind: str, meta: Mapping[str, Any], sources: Mapping[str, str], kinds: Mapping[str, str],
                translations: Mapping[str, Mapping[str, str]], settings: Mapping[str, Any]) -> list[Problem]:
    renderer = renderer_for(settings, sources, kinds)
    env = TemplateEnvironment(lambda _: None, translations=dict(translations))
    source = sources[name]
    if name == BLOCKS:
        return []  # written by the engine for each root
    problems: list[Problem] = []
    for locale in SAMPLE_LOCALES:
        context = sample_context(dict(settings.get("company", {})), locale=locale, channel="print")
        context["slots"] = {slot: None for slot in meta.get("slots") or []}
        data = env.typst_data(context, locale=locale, timezone=context["customer"]["timezone"])
        for found in renderer.check(source, data, template=name):
            message = f"compiling the sample ({locale}) fails: {found.message}" if found.severity == "error" else found.message
            problem = Problem(name, found.line, found.column, message, found.severity)
            if problem not in problems:
                problems.append(problem)
        if any(p.severity == "error" for p in problems):
            break
    return problems
