"""The one error of the rule language: what is wrong and where (1-based column)."""
from __future__ import annotations


class RuleError(ValueError):
    """A rule that cannot be saved or run. ``column`` is 1-based, or None for the whole rule."""

    def __init__(self, reason: str, column: int | None = None, expression: str = "") -> None:
        self.reason, self.column, self.expression = reason, column, expression
        where = f" at column {column}" if column else ""
        head, _, hint = reason.partition("; ")
        super().__init__(f"{head}{where}" + (f"; {hint}" if hint else ""))
