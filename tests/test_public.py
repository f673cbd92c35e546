"""The public faces: ``__all__`` lists every public name, sorted, and each of them exists.

Sorted as ruff's RUF022 sorts it: CONSTANTS, then Classes, then functions, each alphabetically.
"""

from __future__ import annotations

import importlib
import types

import pytest

FACES = [
    "promptrun",
    "promptrun.blueprint",
    "promptrun.pipeline",
    "promptrun.testing",
    "promptrun.workflows",
]


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return 0, name
    return (1 if name[0].isupper() else 2), name


@pytest.mark.parametrize("name", FACES)
def test_all_lists_every_public_name_sorted(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and not isinstance(value, types.ModuleType)
    } - {"annotations"}
    assert exported == sorted(exported, key=_isort_key)
    assert len(set(exported)) == len(exported)
    assert set(exported) - {"__version__"} == public
    for attr in exported:
        assert hasattr(module, attr), attr


def test_the_top_level_names_are_the_clients_their_errors_and_result_types() -> None:
    import promptrun

    assert {"AsyncPromptLayer", "PromptLayer", "PromptLayerError", "RunResult"} <= set(
        promptrun.__all__
    )
    assert promptrun.__version__
