"""Static checks of a template's Jinja tree: names against the context schema of its kind,
unknown slots and included templates, and everything the sandbox would refuse.

Jinja's nodes carry lines but no columns; the column is where the expression's text
first appears on that line.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import (UNSAFE_ASYNC_GENERATOR_ATTRIBUTES, UNSAFE_COROUTINE_ATTRIBUTES,
                            UNSAFE_FUNCTION_ATTRIBUTES, UNSAFE_GENERATOR_ATTRIBUTES,
                            UNSAFE_METHOD_ATTRIBUTES)

from ccm.authoring.context import ANY, FUNCTIONS, LEAF, ListOf
from ccm.authoring.problems import Problem, column_of

UNSAFE_ATTRIBUTES = frozenset(
    UNSAFE_FUNCTION_ATTRIBUTES | UNSAFE_METHOD_ATTRIBUTES | UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
    | {"mro", "format", "format_map", "gi_code", "f_globals", "f_locals", "f_builtins", "tb_frame", "cr_frame"}
)
MUTATING_METHODS = frozenset({"append", "extend", "insert", "pop", "popitem", "remove", "clear", "update",
                              "setdefault", "add", "discard", "sort", "reverse", "difference_update"})
REFUSED_FILTERS = {
    "attr": "the attr filter looks attributes up by a computed name",
    "format": "the format filter builds strings the sandbox cannot see (use _() with parameters)",
    "safe": "safe switches off HTML escaping of customer data",
    "xmlattr": "xmlattr writes attributes from data",
}
DICT_METHODS = frozenset({"get", "items", "keys", "values"})
Loader = Callable[[str], "str | None"]


class TreeChecker:
    """Walks one template's tree and collects problems."""

    def __init__(self, name: str, source: str, schema: dict[str, Any], *, slots: list[str],
                 exists: Callable[[str], bool]) -> None:
        self.name, self.source, self.schema = name, source, schema
        self.slots, self.exists = slots, exists
        self.problems: list[Problem] = []
        self.declared: set[str] = set()

    def check(self, tree: nodes.Template) -> list[Problem]:
        self.declared = _declared_names(tree)
        self._walk(tree, [{}])
        return self.problems

    # -- reporting ------------------------------------------------------------------
    def _report(self, node: nodes.Node, message: str, needle: str | None = None, severity: str = "error") -> None:
        line, column = column_of(self.source, getattr(node, "lineno", 1), needle)
        problem = Problem(self.name, line, column, message, severity)
        if problem not in self.problems:
            self.problems.append(problem)

    # -- statements -----------------------------------------------------------------
    def _walk(self, node: nodes.Node, scopes: list[dict[str, Any]]) -> None:
        if isinstance(node, nodes.For):
            item = self._expr(node.iter, scopes)
            frame: dict[str, Any] = {"loop": ANY}
            self._bind(node.target, item.item if isinstance(item, ListOf) else ANY, frame)
            inner = [*scopes, frame]
            if node.test is not None:
                self._expr(node.test, inner)
            self._walk_all(node.body, inner)
            self._walk_all(node.else_, scopes)
        elif isinstance(node, (nodes.Macro, nodes.CallBlock)):
            if isinstance(node, nodes.CallBlock):
                self._expr(node.call, scopes)
            for default in node.defaults:
                self._expr(default, scopes)
            frame = {"caller": ANY, "varargs": ANY, "kwargs": ANY}
            for arg in node.args:
                frame[arg.name] = ANY
            self._walk_all(node.body, [*scopes, frame])
        elif isinstance(node, nodes.Assign):
            value = self._expr(node.node, scopes)
            self._bind(node.target, value, scopes[-1])
        elif isinstance(node, nodes.AssignBlock):
            self._walk_all(node.body, scopes)
            self._bind(node.target, LEAF, scopes[-1])
        elif isinstance(node, nodes.With):
            frame = {}
            for target, value in zip(node.targets, node.values):
                self._bind(target, self._expr(value, scopes), frame)
            self._walk_all(node.body, [*scopes, frame])
        elif isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            self._template_reference(node)
        elif isinstance(node, nodes.Expr):
            self._expr(node, scopes)
        else:
            for child in node.iter_child_nodes():
                self._walk(child, scopes)

    def _walk_all(self, body: list[nodes.Node], scopes: list[dict[str, Any]]) -> None:
        for child in body:
            self._walk(child, scopes)

    def _bind(self, target: nodes.Node, schema: Any, frame: dict[str, Any]) -> None:
        if isinstance(target, nodes.Name):
            frame[target.name] = schema
        elif isinstance(target, nodes.Tuple):
            for item in target.items:
                self._bind(item, ANY, frame)

    def _template_reference(self, node: nodes.Node) -> None:
        target = node.template
        what = {"Include": "included", "Extends": "extended"}.get(type(node).__name__, "imported")
        if isinstance(target, nodes.Const) and isinstance(target.value, str):
            if not self.exists(target.value) and not getattr(node, "ignore_missing", False):
                self._report(node, f"unknown block or template {target.value!r} ({what} here)", target.value)
        else:
            self._report(node, f"the name of an {what} template must be a constant string")

    # -- expressions ----------------------------------------------------------------
    def _expr(self, node: nodes.Node, scopes: list[dict[str, Any]]) -> Any:
        """Check an expression; return the schema of its value (ANY when not known)."""
        if isinstance(node, nodes.Name):
            return self._name(node, scopes)
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            return self._lookup(node, scopes)
        if isinstance(node, nodes.Const):
            if isinstance(node.value, str) and "__" in node.value:
                self._report(node, f"string {node.value!r} names a dunder attribute; the sandbox refuses those", node.value)
            return LEAF
        if isinstance(node, nodes.Filter):
            self._filter(node)
        if isinstance(node, nodes.Call):
            self._call(node, scopes)
        for child in node.iter_child_nodes():
            self._expr(child, scopes)
        return ANY

    def _name(self, node: nodes.Name, scopes: list[dict[str, Any]]) -> Any:
        if node.ctx != "load":
            return ANY
        for frame in reversed(scopes):
            if node.name in frame:
                return frame[node.name]
        if node.name in self.declared:
            return ANY
        if node.name in self.schema:
            return self.schema[node.name]
        if node.name in FUNCTIONS or node.name == "super":
            return ANY
        known = sorted([*self.schema, *FUNCTIONS])
        self._report(node, f"unknown name {node.name!r}{_suggest(node.name, known)}; this template can use: {', '.join(known)}",
                     node.name)
        return ANY

    def _lookup(self, node: nodes.Getattr | nodes.Getitem, scopes: list[dict[str, Any]]) -> Any:
        base = self._expr(node.node, scopes)
        if isinstance(node, nodes.Getattr):
            key: Any = node.attr
        else:
            if not isinstance(node.arg, nodes.Const):
                self._expr(node.arg, scopes)
                if _builds_a_name(node.arg):
                    self._report(node, f"{_path(node.node)}[...]: a key computed from strings is refused "
                                       "(it could spell a name the sandbox forbids)", "[")
                return base.item if isinstance(base, ListOf) else ANY
            key = node.arg.value
            if isinstance(key, int) and isinstance(base, ListOf):
                return base.item
        if not isinstance(key, str):
            return ANY
        path = _path(node)
        if key.startswith("_") or key in UNSAFE_ATTRIBUTES:
            self._report(node, f"the sandbox refuses access to {key!r} ({path})", key)
            return ANY
        if isinstance(base, dict):
            if key in base:
                return base[key]
            if key in DICT_METHODS:
                return ANY
            self._report(node, f"{path} is not a known field{_suggest(key, list(base))}; "
                               f"{_path(node.node)} has: {', '.join(sorted(base))}", path if path != "?" else key)
            return ANY
        return ANY

    def _filter(self, node: nodes.Filter) -> None:
        if node.name in REFUSED_FILTERS:
            self._report(node, f"filter {node.name!r} is not allowed: {REFUSED_FILTERS[node.name]}", node.name)
        for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
            if isinstance(arg, nodes.Const) and arg.value in REFUSED_FILTERS:
                self._report(node, f"filter {arg.value!r} is not allowed, not even through {node.name}: "
                                   f"{REFUSED_FILTERS[arg.value]}", str(arg.value))

    def _call(self, node: nodes.Call, scopes: list[dict[str, Any]]) -> None:
        callee = node.node
        if isinstance(callee, nodes.Getattr) and callee.attr in MUTATING_METHODS:
            self._report(node, f"{_path(callee)}() would change data; the sandbox refuses that", callee.attr)
        if isinstance(callee, nodes.Name) and callee.name == "slot" and not any(callee.name in f for f in scopes):
            arg = node.args[0] if node.args else None
            if not (isinstance(arg, nodes.Const) and isinstance(arg.value, str)):
                self._report(node, "slot() takes the slot's name as a constant string", "slot")
            elif arg.value not in self.slots:
                declared = ", ".join(self.slots) or "none"
                self._report(node, f"unknown slot {arg.value!r} (this template declares: {declared})", arg.value)


def _declared_names(tree: nodes.Template) -> set[str]:
    """Names the template defines anywhere (set, macro, import), so use before definition in
    another branch is not mistaken for an unknown name."""
    names: set[str] = set()
    for node in tree.find_all((nodes.Assign, nodes.AssignBlock, nodes.Macro, nodes.Import, nodes.FromImport)):
        if isinstance(node, nodes.Macro):
            names.add(node.name)
        elif isinstance(node, nodes.Import):
            names.add(node.target)
        elif isinstance(node, nodes.FromImport):
            names.update(item[1] if isinstance(item, tuple) else item for item in node.names)
        elif isinstance(node.target, nodes.Name):
            names.add(node.target.name)
        else:
            names.update(n.name for n in node.target.find_all(nodes.Name))
    return names


def _builds_a_name(key: nodes.Node) -> bool:
    """Whether a subscript key is made of strings (concatenation, filters, string constants)."""
    if isinstance(key, (nodes.Concat, nodes.Filter)):
        return True
    return any(isinstance(n, (nodes.Concat, nodes.Filter)) or (isinstance(n, nodes.Const) and isinstance(n.value, str))
               for n in key.find_all((nodes.Concat, nodes.Filter, nodes.Const)))


def _path(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_path(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_path(node.node)}.{node.arg.value}" if isinstance(node.arg.value, str) else f"{_path(node.node)}[{node.arg.value}]"
    if isinstance(node, nodes.Const):
        return repr(node.value)
    return "?"


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""

