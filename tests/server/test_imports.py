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
# Pure or shared packages: any of their modules.
PACKAGES = ("promptrun.blueprint", "promptrun.wire", "promptrun.workflows")
# Exactly these modules.
MODULES = frozenset(
    {
        "promptrun",  # `from promptrun import blueprint`
        "promptrun.pipeline",
        "promptrun._errors",  # the exception tree
        "promptrun._version",
        "promptrun._render_threads",  # rendering off the event loop, under a budget
        "promptrun._spantree",  # a trace's spans as a tree (pure)
    }
)
# `from promptrun import X`: only these names.
FROM_PROMPTRUN = frozenset({"blueprint"})


def allowed(module: str) -> bool:
    if module in MODULES or module.startswith("promptrun.server"):
        return True
    return any(module == p or module.startswith(p + ".") for p in PACKAGES)


def promptrun_imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every promptrun module a file imports (at any depth: lazy imports too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "promptrun":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "promptrun":
                continue
            if node.module == "promptrun":
                for alias in node.names:
                    name = "promptrun." + alias.name
                    yield node.lineno, name if alias.name not in FROM_PROMPTRUN else "promptrun"
            else:
                yield node.lineno, node.module


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
