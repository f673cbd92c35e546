"""The public face of promptrun.blueprint."""

from __future__ import annotations

import promptrun.blueprint as blueprint


def test_all_lists_every_public_name_sorted() -> None:
    public = {name for name in vars(blueprint) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(blueprint, name)).__name__ == "module"}
    assert sorted(blueprint.__all__) == blueprint.__all__
    assert set(blueprint.__all__) == public - modules - {"annotations"}


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
