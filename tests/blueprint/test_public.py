"""The public face of promptrun.blueprint."""

from __future__ import annotations

import promptrun.blueprint as blueprint


def test_render_errors_derive_from_the_validation_error() -> None:
    from promptrun import PromptLayerValidationError

    for name in (
        "TemplateRenderError",
        "MissingVariablesError",
        "TemplateSyntaxError",
        "UnsafeTemplateError",
    ):
        assert issubclass(getattr(blueprint, name), PromptLayerValidationError)
    assert issubclass(blueprint.MissingVariablesError, blueprint.TemplateRenderError)
