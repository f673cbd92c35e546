"""The server imports only promptrun's public or pure packages, never the client's internals.

``promptrun serve`` shares code with the clients through packages that do no client-side I/O
(``blueprint``, ``wire``, ``workflows``) and through the run pipeline's public face
(``promptrun.pipeline`` itself, not its modules), plus a few pure top-level helpers. It never
reaches into the clients (``_client``, ``_sync``, ``_runtime``), their actors, or the
pipeline's internals: a change there must not be able to break the server.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import promptrun.server

SERVER = Path(promptrun.server.__file__).parent
ROOT = SERVER.parent  # runtime/promptrun
# Pure or shared packages: any of their modules.
PACKAGES = ("promptrun.blueprint", "promptrun.wire", "promptrun.workflows")
# Exactly these modules.
MODULES = frozenset(
    {
        "promptrun",  # a name of the public face, such as __version__
        "promptrun.pipeline",
        "promptrun._errors",  # the exception tree
        "promptrun._version",
        "promptrun._render_threads",  # rendering off the event loop, under a budget
        "promptrun._spantree",  # a trace's spans as a tree (pure)
        "promptrun.tracing._genai",  # GenAI span attributes of a provider call (pure)
    }
)


def allowed(module: str) -> bool:
    if module in MODULES or module == "promptrun.server" or module.startswith("promptrun.server."):
        return True
    return any(module == p or module.startswith(p + ".") for p in PACKAGES)


def is_module(dotted: str) -> bool:
    """Whether ``dotted`` (``promptrun.x.y``) names a module or package of promptrun."""
    path = ROOT.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def package_of(path: Path, top: Path) -> list[str]:
    """The dotted package a file under ``top`` is in (``["promptrun", "server", "routes"]``)."""
    return list(path.relative_to(top).parent.parts)


def promptrun_imports(path: Path, top: Path = ROOT.parent) -> Iterator[tuple[int, str]]:
    """Every promptrun module a file imports (at any depth: lazy imports too; relative ones
    resolved; ``from package import module`` counts as importing the module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "promptrun":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package_of(path, top)
                base = parts[: len(parts) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.split(".")[0] != "promptrun":
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield node.lineno, submodule if is_module(submodule) else module


def test_the_server_package_imports_only_public_or_pure_promptrun_modules() -> None:
    files = sorted(SERVER.rglob("*.py"))
    assert len(files) > 50  # the walk found the server
    found = [
        f"{path.relative_to(SERVER.parent)}:{line}: {module}"
        for path in files
        for line, module in promptrun_imports(path)
        if not allowed(module)
    ]
    assert not found, (
        "the server may import promptrun.blueprint, .wire, .workflows, the pipeline's public "
        "face (promptrun.pipeline) and "
        + ", ".join(sorted(MODULES))
        + "; these do not:\n"
        + "\n".join(found)
    )


def test_the_import_rule_would_catch_a_client_internal() -> None:
    for forbidden in (
        "promptrun._client",
        "promptrun._runtime",
        "promptrun.actors.shipper",
        "promptrun.pipeline._pipeline",
        "promptrun.pipeline.providers",
        "promptrun._template_cache",
    ):
        assert not allowed(forbidden), forbidden


def test_the_walk_sees_relative_lazy_and_from_package_imports(tmp_path: Path) -> None:
    routes = tmp_path / "promptrun" / "server" / "routes"
    routes.mkdir(parents=True)
    sneaky = routes / "sneaky.py"
    sneaky.write_text(
        "from ... import _client\n"
        "from ...pipeline import _pipeline\n"
        "from .. import _prompt_runs\n"
        "from promptrun.pipeline import providers\n"
        "def later():\n"
        "    import promptrun._runtime\n"
    )
    found = [module for _, module in promptrun_imports(sneaky, top=tmp_path)]
    assert found == [
        "promptrun._client",
        "promptrun.pipeline._pipeline",
        "promptrun.server._prompt_runs",
        "promptrun.pipeline.providers",
        "promptrun._runtime",
    ]
    assert [allowed(module) for module in found] == [False, False, True, False, False]
