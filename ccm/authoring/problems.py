"""A problem found in a template, always with its line and column (1-based)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Problem:
    template: str
    line: int
    column: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.template}, line {self.line}, column {self.column}: {self.severity}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def at_offset(source: str, offset: int) -> tuple[int, int]:
    """Line and column of a character offset."""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def column_of(source: str, line: int | None, needle: str | None = None) -> tuple[int, int]:
    """The column of ``needle`` on ``line`` (else of the line's first character)."""
    lines = source.splitlines()
    line = line or 1
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    if needle:
        found = text.find(needle)
        if found >= 0:
            return line, found + 1
    return line, len(text) - len(text.lstrip()) + 1


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
