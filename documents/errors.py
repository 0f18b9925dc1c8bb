"""Errors raised while checking or rendering a template.

Every error carries the template name, the line (when known) and a message;
``str(error)`` is one human-readable line such as
``statement/statement.html, line 12: statement.due_dat is undefined``.
"""

from __future__ import annotations

__all__ = ["TemplateProblem", "TemplateSyntaxProblem", "RenderError", "RenderTimeout", "OutputTooLarge"]


class TemplateProblem(Exception):
    """Base class: something is wrong with a template or its render."""

    template: str
    lineno: int | None
    message: str

    def __init__(self, message: str, *, template: str = "", lineno: int | None = None) -> None:
        self.message = " ".join(message.split())
        self.template = template
        self.lineno = lineno
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.template or "<template>"
        if self.lineno is not None:
            where = f"{where}, line {self.lineno}"
        return f"{where}: {self.message}"

    def located(self, template: str, lineno: int | None) -> TemplateProblem:
        """Return a copy of this error placed at ``template``/``lineno``."""
        return type(self)(self.message, template=template, lineno=lineno)


class TemplateSyntaxProblem(TemplateProblem):
    """The template is not valid Jinja syntax (or includes a missing template)."""


class RenderError(TemplateProblem):
    """The template failed while rendering: missing field, sandbox refusal, bad value."""


class RenderTimeout(RenderError):
    """The render took longer than the environment's ``render_timeout``."""


class OutputTooLarge(RenderError):
    """The render wrote more than the environment's ``max_output`` characters."""
