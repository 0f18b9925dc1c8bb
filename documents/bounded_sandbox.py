"""The sandbox every customer template compiles and renders in: Jinja's immutable
sandbox with the size limits of ``limits`` applied everywhere a value is built.

- Nothing is evaluated while compiling. Jinja folds constant expressions at compile
  time (its optimizer, and the code generator for ``{{ ... }}``), which would build
  ``"a" * 10**9`` while a template is merely checked; here every expression becomes
  run-time code, where the limits apply.
- ``*``, ``**``, ``+``, ``%`` and ``~``, filters and string methods check the size of
  what they would build; ``str.format`` is refused (``_()`` takes parameters);
  ``lipsum`` is gone.
- Every buffer a macro, call block or ``{% set %}`` capture writes into spends the
  render's output budget; ``{{ value }}`` of a list checks its printed size first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from .bounded_filters import bounded_filters, check_text_method
from .limits import (MAX_EXPONENT, MAX_INT_BITS, OutputBudget, check_printf, check_size, current_budget,
                     text_size)

__all__ = ["BoundedSandbox"]


class _Buffer(list):  # type: ignore[type-arg]
    """The list a macro, call block or ``{% set %}`` capture writes into, spending the budget."""

    def __init__(self, budget: OutputBudget) -> None:
        super().__init__()
        self._budget = budget

    def append(self, text: str) -> None:
        self._budget.spend(len(text))
        super().append(text)

    def extend(self, texts: Iterable[str]) -> None:
        texts = tuple(texts)
        self._budget.spend(sum(map(len, texts)))
        super().extend(texts)


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator without compile-time evaluation, with bounded buffers and ``~``."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        if isinstance(node, nodes.TemplateData):
            return super()._output_child_to_const(node, frame, finalize)
        raise nodes.Impossible()  # evaluated at run time, under the limits

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        else:
            join = "markup_join" if frame.eval_ctx.autoescape else "str_join"
        self.write(f"environment.concat_checked({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the limits above; never folds constants."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(optimized=False, finalize=_finalize, **options)
        self.globals.pop("lipsum", None)  # lipsum(10**9) builds gigabytes in one call
        self.filters.update(bounded_filters(self.filters))

    def output_buffer(self) -> _Buffer:
        return _Buffer(current_budget())

    def concat_checked(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        check_size(sum(text_size(part) for part in parts))
        return join(parts)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, (str, bytes)):
            check_text_method(owner, getattr(obj, "__name__", ""), args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:
            return None

        def refuse(*args: Any, **kwargs: Any) -> str:
            raise SecurityError("str.format is refused: use _() with parameters")
        return refuse

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%":
            if isinstance(left, str):
                check_printf(left, right)
            return left % right
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent above {MAX_EXPONENT} refused")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() * right > MAX_INT_BITS:
                raise SecurityError(f"a number above {MAX_INT_BITS:,} bits refused")
            return left ** right
        if operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise SecurityError(f"a number above {MAX_INT_BITS:,} bits refused")
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                    check_size(len(sequence) * max(count, 0))
            return left * right
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            check_size(len(left) + len(right))
        return left + right


def _finalize(value: Any) -> Any:
    """Applied to every ``{{ value }}`` before it becomes text."""
    if not isinstance(value, str):
        check_size(text_size(value))
    return value
