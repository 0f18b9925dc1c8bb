"""Constant expressions of a template that the sandbox would refuse, found at save time.

Jinja's own constant folding computes without limits (``"a" * 10**9`` takes gigabytes),
so the sandbox never folds. This evaluates the constant parts of a template's tree with
the sandbox's operators and filters, so under the same limits as a render, and within
a budget of ``MAX_OUTPUT`` characters for all of them together; what it cannot evaluate
(names, calls, anything that fails for another reason) is left to the render.
"""

from __future__ import annotations

import operator
from typing import Any

from jinja2 import nodes
from jinja2.runtime import str_join
from jinja2.sandbox import SecurityError
from jinja2.utils import _PassArg

from .bounded_filters import check_text_method
from .bounded_sandbox import BoundedSandbox
from .limits import MAX_OUTPUT, OutputBudget, OutputLimitExceeded, text_size

__all__ = ["constant_refusals"]

_PLAIN_BINOPS = {"-": operator.sub, "/": operator.truediv, "//": operator.floordiv}
_TEXT_METHODS = ("center", "ljust", "rjust", "zfill", "replace", "join", "expandtabs", "translate")


class _NotConstant(Exception):
    pass


def constant_refusals(env: BoundedSandbox, tree: nodes.Template) -> list[tuple[nodes.Node, str]]:
    """Each constant expression of ``tree`` the sandbox refuses, with the reason."""
    return _Folder(env).refusals(tree)


class _Folder:
    def __init__(self, env: BoundedSandbox) -> None:
        self.env = env
        self.found: list[tuple[nodes.Node, str]] = []
        self.memo: dict[int, Any] = {}
        self.budget = OutputBudget(MAX_OUTPUT)

    def refusals(self, tree: nodes.Template) -> list[tuple[nodes.Node, str]]:
        try:
            self._walk(tree)
        except OutputLimitExceeded:
            pass  # enough evaluated; the render checks the rest
        return self.found

    def _walk(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.Expr):
            try:
                self.fold(node)
                return
            except _NotConstant:
                pass
        for child in node.iter_child_nodes():
            self._walk(child)

    def fold(self, node: nodes.Node) -> Any:
        key = id(node)
        if key in self.memo:
            if self.memo[key] is _NotConstant:
                raise _NotConstant
            return self.memo[key]
        self.memo[key] = _NotConstant
        try:
            value = self._compute(node)
        except OutputLimitExceeded:
            raise
        except SecurityError as error:
            self.found.append((node, str(error)))
            raise _NotConstant from None
        except Exception:  # noqa: BLE001 - not constant, or fails at render with its own message
            raise _NotConstant from None
        self.budget.spend(text_size(value, MAX_OUTPUT))
        self.memo[key] = value
        return value

    def _compute(self, node: nodes.Node) -> Any:
        env = self.env
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, (nodes.List, nodes.Tuple)):
            items = [self.fold(item) for item in node.items]
            return items if isinstance(node, nodes.List) else tuple(items)
        if isinstance(node, nodes.Neg):
            return -self.fold(node.node)
        if isinstance(node, nodes.BinExpr):
            left, right = self.fold(node.left), self.fold(node.right)
            if node.operator in env.intercepted_binops:
                return env.call_binop(None, node.operator, left, right)
            if node.operator in _PLAIN_BINOPS:
                return _PLAIN_BINOPS[node.operator](left, right)
        if isinstance(node, nodes.Concat):
            return env.concat_checked(str_join, tuple(self.fold(part) for part in node.nodes))
        if isinstance(node, nodes.Filter):
            return self._filter(node)
        if isinstance(node, nodes.Call):
            return self._text_method(node)
        raise _NotConstant

    def _filter(self, node: nodes.Filter) -> Any:
        function = self.env.filters.get(node.name)
        if function is None or node.node is None or node.dyn_args or node.dyn_kwargs:
            raise _NotConstant
        args = [self.fold(node.node), *(self.fold(arg) for arg in node.args)]
        kwargs = {pair.key: self.fold(pair.value) for pair in node.kwargs}
        passed = _PassArg.from_obj(function)
        if passed is _PassArg.context:
            raise _NotConstant
        if passed is _PassArg.eval_context:
            args.insert(0, nodes.EvalContext(self.env))
        elif passed is _PassArg.environment:
            args.insert(0, self.env)
        return function(*args, **kwargs)

    def _text_method(self, node: nodes.Call) -> Any:
        callee = node.node
        if not isinstance(callee, nodes.Getattr) or callee.attr not in _TEXT_METHODS or node.dyn_args or node.dyn_kwargs:
            raise _NotConstant
        text = self.fold(callee.node)
        if not isinstance(text, str):
            raise _NotConstant
        args = tuple(self.fold(arg) for arg in node.args)
        kwargs = {pair.key: self.fold(pair.value) for pair in node.kwargs}
        check_text_method(text, callee.attr, args, kwargs)
        return getattr(text, callee.attr)(*args, **kwargs)
