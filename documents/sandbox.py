"""The sandboxed Jinja environment every customer template renders in.

``ImmutableSandboxedEnvironment`` with ``StrictUndefined``; autoescape by file
name (on for .html/.htm/.xml/.svg, off otherwise); compiled templates cached;
a wall-clock render timeout, size limits (``limits``); customer data isolated against
bidi controls; right-to-left renders (Arabic, Hebrew) get ``direction`` "rtl" and
isolated values, other right-to-left locales are made in English (``bidi``). Every failure comes out as a
:class:`~documents.errors.TemplateProblem` naming the template and the line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Generator, Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (BaseLoader, Environment, StrictUndefined, TemplateNotFound,
                    TemplateRuntimeError, TemplateSyntaxError, UndefinedError, nodes,
                    select_autoescape)
from jinja2.sandbox import SecurityError

from . import render_state
from .bidi import is_right_to_left, isolate_data, layout_locale
from .deadline import DeadlineExceeded, deadline
from .errors import OutputTooLarge, RenderError, RenderTimeout, TemplateProblem, TemplateSyntaxProblem
from .formatting import FILTERS, gettext, slot
from .i18n import negotiate, parse_locale
from .bounded_sandbox import BoundedSandbox
from .constants import constant_refusals
from .limits import MAX_OUTPUT, OutputBudget, OutputLimitExceeded, output_budget

__all__ = ["TemplateEnvironment", "file_loader", "parse_template", "refused_constants"]

Loader = Callable[[str], "str | None"]
_FILENAME_PREFIX = "template:"


class TemplateEnvironment:
    """Checks and renders named templates from ``loader`` in a sandbox.

    ``translations`` maps a locale tag (``zh_Hans``) to ``{msgid: msgstr}``.
    Templates translate with ``_("Hello %(name)s", name=...)`` (``%(name)s``
    placeholders, as in gettext's python-format).
    """

    def __init__(self, loader: Loader, *,
                 translations: Mapping[str, Mapping[str, str]] | None = None,
                 render_timeout: float = 10.0, max_output: int = MAX_OUTPUT) -> None:
        self._loader = loader
        self._translations = dict(translations or {})
        self._render_timeout = render_timeout
        self._max_output = max_output
        self._env = _make_jinja_environment(loader)

    def check(self, name: str) -> None:
        """Parse ``name`` and every template it includes, extends or imports by a constant name."""
        self._check(name, set(), (name, None))

    def render(self, name: str, context: Mapping[str, Any], *,
               locale: str = "en", timezone: str = "UTC") -> str:
        """Render ``name`` with ``context`` for a customer's locale and time zone."""
        state = self._state(name, context, locale, timezone)
        token = render_state.push(state)
        try:
            with deadline(self._render_timeout), output_budget(self._max_output) as budget:
                template = self._env.get_template(name)
                data = {key: value if key == "slots" else isolate_data(value) for key, value in context.items()}
                direction = "rtl" if state.rtl else "ltr"
                return _written(template.generate({**data, "locale": str(state.locale), "direction": direction}), budget)
        except DeadlineExceeded as error:
            raise self._render_error(RenderTimeout, name, error,
                                     f"render took longer than {self._render_timeout:g} s") from None
        except OutputLimitExceeded as error:
            raise self._render_error(OutputTooLarge, name, error, str(error)) from None
        except TemplateProblem as error:
            if error.template:
                raise
            raise error.located(*_location(error, name)) from None
        except TemplateSyntaxError as error:
            raise TemplateSyntaxProblem(error.message or "syntax error",
                                        template=error.name or name, lineno=error.lineno) from None
        except TemplateNotFound as error:
            raise self._render_error(RenderError, name, error, f"template not found: {error.name}") from None
        except SecurityError as error:
            raise self._render_error(RenderError, name, error, f"sandbox refused: {error}") from None
        except UndefinedError as error:
            raise self._undefined_error(name, error) from None
        except TemplateRuntimeError as error:
            raise self._render_error(RenderError, name, error, str(error)) from None
        except OverflowError as error:
            raise self._render_error(RenderError, name, error, f"sandbox refused: {error}") from None
        except Exception as error:  # noqa: BLE001 - any template failure is a RenderError
            # The exception's text may quote customer data (int('Jane Doe')): name the type only.
            raise self._render_error(RenderError, name, error,
                                     f"{type(error).__name__} in a template expression") from None
        finally:
            render_state.pop(token)

    def clear_cache(self) -> None:
        """Forget compiled templates (after templates change)."""
        if self._env.cache is not None:
            self._env.cache.clear()

    def typst_data(self, context: Mapping[str, Any], *, locale: str = "en", timezone: str = "UTC",
                   name: str = "") -> dict[str, Any]:
        """The data of a Typst template for a customer's locale and time zone: ``context``
        formatted and translated as a render of this environment would (``typst_data``)."""
        from .typst_data import typst_data

        return typst_data(context, self._state(name, context, locale, timezone))

    def _state(self, name: str, context: Mapping[str, Any], locale: str,
               timezone: str) -> render_state.RenderState:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise RenderError(f"unknown time zone {timezone!r}", template=name) from None
        made_in = layout_locale(parse_locale(locale))
        tag = negotiate(str(made_in), self._translations)
        slots = context.get("slots") or {}
        return render_state.RenderState(
            locale=made_in, timezone=zone,
            catalog=self._translations.get(tag, {}) if tag else {}, slots=slots,
            rtl=is_right_to_left(made_in))

    def _check(self, name: str, seen: set[str], site: tuple[str, int | None]) -> None:
        if name in seen:
            return
        seen.add(name)
        source = self._loader(name)
        if source is None:
            raise TemplateSyntaxProblem(f"template not found: {name}", template=site[0], lineno=site[1])
        try:
            tree = self._env.parse(source, name, _FILENAME_PREFIX + name)
            self._env.compile(tree, name, _FILENAME_PREFIX + name)
        except TemplateSyntaxError as error:
            raise TemplateSyntaxProblem(error.message or "syntax error",
                                        template=name, lineno=error.lineno) from None
        for node in tree.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
            target = node.template
            if isinstance(target, nodes.Const) and isinstance(target.value, str):
                if isinstance(node, nodes.Include) and node.ignore_missing and self._loader(target.value) is None:
                    continue
                self._check(target.value, seen, (name, node.lineno))

    def _render_error(self, kind: type[RenderError], name: str, error: BaseException,
                      message: str) -> RenderError:
        template, lineno = _location(error, name)
        return kind(message, template=template, lineno=lineno)

    def _undefined_error(self, name: str, error: UndefinedError) -> RenderError:
        template, lineno = _location(error, name)
        source = self._loader(template) or ""
        lines = source.splitlines()
        line = lines[lineno - 1] if lineno and 0 < lineno <= len(lines) else ""
        return RenderError(_describe_undefined(error.message or str(error), line),
                           template=template, lineno=lineno)


def parse_template(source: str, name: str) -> nodes.Template:
    """Parse and compile ``source`` as the sandbox does (evaluating nothing); return its tree.

    Raises :class:`TemplateSyntaxProblem` with the line (unknown filters included).
    """
    env = _checking_environment()
    try:
        tree = env.parse(source, name)
        env.compile(tree, name)
    except TemplateSyntaxError as error:
        raise TemplateSyntaxProblem(error.message or "syntax error", template=name, lineno=error.lineno) from None
    return tree


def refused_constants(tree: nodes.Template) -> list[tuple[nodes.Node, str]]:
    """The constant expressions of ``tree`` that a render would refuse, each with the reason
    (evaluated under the render's limits, so a refusal costs milliseconds)."""
    return constant_refusals(_checking_environment(), tree)


@functools.cache
def _checking_environment() -> BoundedSandbox:
    return _make_jinja_environment(lambda name: None)


def _written(chunks: Generator[str, None, None], budget: OutputBudget) -> str:
    """The document as the template writes it, each piece spending the output budget."""
    parts = []
    for chunk in chunks:
        try:
            budget.spend(len(chunk))
        except OutputLimitExceeded as error:
            chunks.throw(error)  # raised again where the template wrote it, for the line
            raise
        parts.append(chunk)
    return "".join(parts)


def file_loader(root: str | Path) -> Loader:
    """A loader reading ``root/<name>`` as UTF-8; names escaping ``root`` are unknown."""
    base = Path(root).resolve()

    def load(name: str) -> str | None:
        if not name or "\\" in name or "\x00" in name or name.startswith("/"):
            return None
        if ".." in PurePosixPath(name).parts:
            return None
        path = (base / name).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            return None
        return path.read_text(encoding="utf-8")

    return load


class _FunctionLoader(BaseLoader):
    """Adapts ``loader(name) -> source | None`` to Jinja; sources never go stale."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source = self._loader(template)
        if source is None:
            raise TemplateNotFound(template)
        return source, _FILENAME_PREFIX + template, lambda: True


def _make_jinja_environment(loader: Loader) -> BoundedSandbox:
    env = BoundedSandbox(
        loader=_FunctionLoader(loader),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml", "svg"),
                                     disabled_extensions=(), default_for_string=False, default=False),
        auto_reload=False,
        cache_size=1000,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals.update({"_": gettext, "slot": slot})
    return env


def _location(error: BaseException, fallback: str) -> tuple[str, int | None]:
    """The innermost template frame in ``error``'s traceback (Jinja rewrites it to template lines)."""
    template, lineno = fallback, None
    tb: TracebackType | None = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(_FILENAME_PREFIX):
            template, lineno = filename[len(_FILENAME_PREFIX):], tb.tb_lineno
            compiled = tb.tb_frame.f_globals.get("__jinja_template__")
            if compiled is not None:  # a frame Jinja did not rewrite (e.g. the timeout signal)
                lineno = compiled.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return template, lineno


def _describe_undefined(message: str, line: str) -> str:
    """Turn Jinja's "'dict object' has no attribute 'x'" into "statement.x is undefined"."""
    if match := re.fullmatch(r"'(.+)' is undefined", message):
        return f"{match[1]} is undefined"
    match = re.fullmatch(r"'.+' has no (?:attribute|element) (.+)", message)
    if not match:
        return message
    key = match[1].strip("'\"")
    path = r"([A-Za-z_]\w*(?:\.\w+|\[[^\]]*\])*)"
    lookup = rf"{path}(?:\.{re.escape(key)}\b|\[\s*['\"]{re.escape(key)}['\"]\s*\])"
    if found := re.search(lookup, line):
        return f"{found[1]}.{key} is undefined"
    return f"{key} is undefined ({message})"
