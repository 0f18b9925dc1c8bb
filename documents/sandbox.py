"""The sandboxed Jinja environment every customer template renders in.

``ImmutableSandboxedEnvironment`` with ``StrictUndefined``; autoescape by file
name (on for .html/.htm/.xml/.svg, off otherwise); compiled templates cached;
a wall-clock render timeout. Every failure comes out as a
:class:`~documents.errors.TemplateProblem` naming the template and the line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (BaseLoader, Environment, StrictUndefined, TemplateNotFound,
                    TemplateRuntimeError, TemplateSyntaxError, UndefinedError, nodes,
                    select_autoescape)
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from . import render_state
from .deadline import DeadlineExceeded, deadline
from .errors import RenderError, RenderTimeout, TemplateProblem, TemplateSyntaxProblem
from .formatting import FILTERS, gettext, slot
from .i18n import negotiate, parse_locale

__all__ = ["TemplateEnvironment", "file_loader"]

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
                 render_timeout: float = 10.0) -> None:
        self._loader = loader
        self._translations = dict(translations or {})
        self._render_timeout = render_timeout
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
            with deadline(self._render_timeout):
                template = self._env.get_template(name)
                return template.render({**context, "locale": str(state.locale)})
        except DeadlineExceeded as error:
            raise self._render_error(RenderTimeout, name, error,
                                     f"render took longer than {self._render_timeout:g} s") from None
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

    def _state(self, name: str, context: Mapping[str, Any], locale: str,
               timezone: str) -> render_state.RenderState:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise RenderError(f"unknown time zone {timezone!r}", template=name) from None
        tag = negotiate(locale, self._translations)
        slots = context.get("slots") or {}
        return render_state.RenderState(
            locale=parse_locale(locale), timezone=zone,
            catalog=self._translations.get(tag, {}) if tag else {}, slots=slots)

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


MAX_SEQUENCE = 1_000_000  # characters or items a template may build with * or +
MAX_EXPONENT = 1_000


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus limits on the operators that can build huge values in one step
    (``"a" * 10**9`` would take all memory before any timeout could fire)."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent above {MAX_EXPONENT} refused")
            return left ** right
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                    if len(sequence) * max(count, 0) > MAX_SEQUENCE:
                        raise SecurityError(f"a value longer than {MAX_SEQUENCE:,} refused")
            return left * right
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            if len(left) + len(right) > MAX_SEQUENCE:
                raise SecurityError(f"a value longer than {MAX_SEQUENCE:,} refused")
        return left + right


_FORMAT_WIDTH = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d+))?")


def _bounded_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """Jinja filters that take a width, refusing widths that would build huge strings."""
    center, indent, format_ = filters["center"], filters["indent"], filters["format"]

    def check(width: Any) -> None:
        if isinstance(width, int) and width > MAX_SEQUENCE:
            raise SecurityError(f"a width above {MAX_SEQUENCE:,} refused")

    def bounded_center(value: Any, width: int = 80) -> str:
        check(width)
        return center(value, width)

    def bounded_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> str:
        check(width)
        return indent(value, width, *args, **kwargs)

    def bounded_format(value: Any, *args: Any, **kwargs: Any) -> str:
        for width, precision in _FORMAT_WIDTH.findall(str(value)):
            check(int(width or 0))
            check(int(precision or 0))
        return format_(value, *args, **kwargs)

    return {"center": bounded_center, "indent": bounded_indent, "format": bounded_format}


def _make_jinja_environment(loader: Loader) -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(
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
    env.filters.update(_bounded_filters(env.filters))
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
