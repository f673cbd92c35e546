"""Errors raised while rendering a prompt template."""

from __future__ import annotations

from collections.abc import Iterable

from promptrun._errors import PromptLayerValidationError

__all__ = [
    "MissingVariablesError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "UnsafeTemplateError",
]


class TemplateRenderError(PromptLayerValidationError):
    """A prompt template could not be rendered with the given input variables."""


class MissingVariablesError(TemplateRenderError):
    """The template uses input variables that were not given.

    ``names`` lists every missing name, in the order the template first uses them.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names: list[str] = list(dict.fromkeys(names))
        quoted = ", ".join(repr(n) for n in self.names)
        plural = "s" if len(self.names) != 1 else ""
        super().__init__(
            f"Missing input variable{plural} {quoted}: pass "
            f"{'them' if plural else 'it'} in input_variables."
        )

    def naming(self, where: str) -> MissingVariablesError:
        """The same error with ``where`` (which template) in front of its message."""
        named = MissingVariablesError(self.names)
        named.message = f"{where}: {named.message}"
        named.args = (named.message,)
        return named


class TemplateSyntaxError(TemplateRenderError):
    """The template text is not valid in its template_format (jinja2 syntax errors)."""


class UnsafeTemplateError(TemplateRenderError):
    """A jinja2 template tried something the sandbox forbids (private attributes, huge values)."""
