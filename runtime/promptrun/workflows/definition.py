"""The workflow definition format: msgspec Structs for the JSON, and its validation.

``parse_definition(raw)`` turns JSON (bytes, str or already-decoded data) into a
:class:`WorkflowSpec`, the checked, typed form the engine runs, or raises
:class:`DefinitionError` with a message that names the node and the problem: an unknown node
type, a reference to a node or input variable that does not exist, a cycle (with its path), a
configuration that does not fit the node's type, code that does not compile, an expression that
does not parse. The format itself is documented in :mod:`promptrun.workflows`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from promptrun._errors import PromptLayerValidationError
from promptrun._validate import is_http_url
from promptrun.workflows._compile import check_expression, compile_node_code

__all__ = [
    "NODE_TYPES",
    "CodeConfig",
    "ConditionalConfig",
    "DefinitionError",
    "InputVariable",
    "NodeConfig",
    "NodeDefinition",
    "NodeSpec",
    "PromptTemplateConfig",
    "Ref",
    "ToolConfig",
    "ValueConfig",
    "VariableConfig",
    "VariableSpec",
    "WorkflowDefinition",
    "WorkflowSpec",
    "parse_definition",
]

MAX_NODES = 500
MAX_TIMEOUT = 24 * 3600.0
_NAME_MAX = 128
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NODE_PATH = re.compile(r"\$\.nodes\[(\d+)\]")


class DefinitionError(PromptLayerValidationError):
    """A workflow definition that cannot run; the message names the node and the problem."""


# -- the JSON, as Structs --------------------------------------------------------------------


class InputVariable(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An input variable with a default (a bare string in ``input_variables`` has none)."""

    name: str
    default: Any = msgspec.UNSET
    description: str | None = None


class NodeDefinition(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    name: str
    type: str
    configuration: dict[str, Any] = msgspec.field(default_factory=dict)
    inputs: dict[str, str] = msgspec.field(default_factory=dict)
    dependencies: list[str] = msgspec.field(default_factory=list)
    is_output_node: bool = False


class WorkflowDefinition(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    nodes: list[NodeDefinition]
    input_variables: list[str | InputVariable] = msgspec.field(default_factory=list)
    timeout: float | None = None
    description: str | None = None


class PromptTemplateConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    prompt_name: str
    version: int | None = None
    label: str | None = None
    output: Literal["text", "json", "message"] = "text"
    model_parameter_overrides: dict[str, Any] | None = None


class CodeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: str
    language: Literal["python"] = "python"
    timeout: float = 10.0


class ConditionalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    expression: str
    if_true: list[str] = msgspec.field(default_factory=list)
    if_false: list[str] = msgspec.field(default_factory=list)


class ToolConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str | None = None
    url: str | None = None
    timeout: float = 30.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)


class ValueConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    value: Any


class VariableConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str


NodeConfig = (
    PromptTemplateConfig
    | CodeConfig
    | ConditionalConfig
    | ToolConfig
    | ValueConfig
    | VariableConfig
)
NODE_TYPES: dict[str, type[NodeConfig]] = {
    "prompt_template": PromptTemplateConfig,
    "code": CodeConfig,
    "conditional": ConditionalConfig,
    "tool": ToolConfig,
    "value": ValueConfig,
    "variable": VariableConfig,
}


# -- the checked form the engine runs -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ref:
    """Where an input comes from: an input variable or a node's value, then a key path."""

    kind: Literal["variable", "node"]
    source: str
    path: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class VariableSpec:
    name: str
    required: bool
    default: Any = None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    type: str
    config: NodeConfig
    inputs: dict[str, Ref]
    dependencies: frozenset[str]
    is_output_node: bool


@dataclass(frozen=True, slots=True)
class WorkflowSpec:
    """A valid definition: nodes in definition order, with every dependency made explicit."""

    definition: WorkflowDefinition
    nodes: dict[str, NodeSpec]
    variables: dict[str, VariableSpec]
    timeout: float | None

    def branches(self) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
        """Each conditional node's (true branch, false branch)."""
        out: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        for node in self.nodes.values():
            if isinstance(node.config, ConditionalConfig):
                out[node.name] = (frozenset(node.config.if_true), frozenset(node.config.if_false))
        return out

    def has(self, kind: type[NodeConfig]) -> bool:
        """Whether any node is of this kind (``spec.has(CodeConfig)``)."""
        return any(isinstance(node.config, kind) for node in self.nodes.values())

    def to_builtins(self) -> Any:
        return msgspec.to_builtins(self.definition)


# -- parsing and validation -----------------------------------------------------------------


def _named_path(message: str, raw: Any) -> str:
    """Replace ``$.nodes[3]`` in a msgspec message with the node's name when there is one."""
    nodes = raw.get("nodes") if isinstance(raw, dict) else None

    def name_of(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if isinstance(nodes, list) and index < len(nodes) and isinstance(nodes[index], dict):
            name = nodes[index].get("name")
            if isinstance(name, str):
                return f"node {name!r} ($.nodes[{index}])"
        return match.group(0)

    return _NODE_PATH.sub(name_of, message)


def _decode(raw: Any) -> WorkflowDefinition:
    if isinstance(raw, WorkflowDefinition):
        return raw
    data = raw
    if isinstance(raw, bytes | bytearray | memoryview | str):
        try:
            data = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise DefinitionError(f"workflow definition is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DefinitionError(
            'a workflow definition is a JSON object: {"input_variables": [...], "nodes": [...]}'
        )
    try:
        return msgspec.convert(data, WorkflowDefinition)
    except msgspec.ValidationError as exc:
        raise DefinitionError(
            f"invalid workflow definition: {_named_path(str(exc), data)}"
        ) from None


def _check_name(kind: str, name: str) -> None:
    if not name.strip() or name != name.strip() or len(name) > _NAME_MAX:
        raise DefinitionError(
            f"{kind} name {name!r} must be 1 to {_NAME_MAX} characters without surrounding spaces"
        )
    if "." in name:
        raise DefinitionError(
            f"{kind} name {name!r} must not contain '.': dots separate the key path in references"
        )


def _variables(definition: WorkflowDefinition) -> dict[str, VariableSpec]:
    out: dict[str, VariableSpec] = {}
    for item in definition.input_variables:
        if isinstance(item, str):
            spec = VariableSpec(item, required=True)
        elif item.default is msgspec.UNSET:
            spec = VariableSpec(item.name, required=True)
        else:
            spec = VariableSpec(item.name, required=False, default=item.default)
        _check_name("input variable", spec.name)
        if spec.name in out:
            raise DefinitionError(f"input variable {spec.name!r} is declared twice")
        out[spec.name] = spec
    return out


def _config(node: NodeDefinition) -> NodeConfig:
    kind = NODE_TYPES.get(node.type)
    if kind is None:
        known = ", ".join(sorted(NODE_TYPES))
        raise DefinitionError(
            f"node {node.name!r} has unknown type {node.type!r}; use one of {known}"
        )
    try:
        return msgspec.convert(node.configuration, kind)
    except msgspec.ValidationError as exc:
        raise DefinitionError(
            f"node {node.name!r} ({node.type}): invalid configuration: {exc}"
        ) from None


def _ref(
    node: str, local: str, text: str, names: Mapping[str, Any], variables: Mapping[str, Any]
) -> Ref:
    if not _IDENTIFIER.match(local):
        raise DefinitionError(
            f"node {node!r}: input name {local!r} must be an identifier (letters, digits, _), "
            "because code nodes and expressions use it as a variable"
        )
    source, *path = text.split(".")
    if source in names:
        if source == node:
            raise DefinitionError(f"node {node!r} reads its own value (input {local!r})")
        return Ref("node", source, tuple(path), text)
    if source in variables:
        return Ref("variable", source, tuple(path), text)
    raise DefinitionError(
        f"node {node!r}: input {local!r} reads {text!r}, but {source!r} is neither a node nor "
        "an input variable of this workflow"
    )


def _check_config(
    node: NodeDefinition, config: NodeConfig, names: Mapping[str, Any], variables: Mapping[str, Any]
) -> None:
    where = f"node {node.name!r} ({node.type})"
    if isinstance(config, PromptTemplateConfig):
        if not config.prompt_name.strip():
            raise DefinitionError(f"{where}: prompt_name must not be blank")
        if config.version is not None and config.label is not None:
            raise DefinitionError(f"{where}: give version or label, not both")
    elif isinstance(config, CodeConfig):
        _check_timeout(where, config.timeout)
        try:
            compile_node_code(config.code, list(node.inputs))
        except SyntaxError as exc:
            raise DefinitionError(
                f"{where}: the code does not compile: {exc.msg} (line {exc.lineno})"
            ) from None
    elif isinstance(config, ConditionalConfig):
        problem = check_expression(config.expression)
        if problem:
            raise DefinitionError(f"{where}: the expression does not parse: {problem}")
        for branch in ("if_true", "if_false"):
            for target in getattr(config, branch):
                if target not in names:
                    raise DefinitionError(
                        f"{where}: {branch} names {target!r}, which is not a node"
                    )
                if target == node.name:
                    raise DefinitionError(f"{where}: {branch} names the conditional itself")
        both = set(config.if_true) & set(config.if_false)
        if both:
            raise DefinitionError(f"{where}: {sorted(both)} are on both branches")
    elif isinstance(config, ToolConfig):
        _check_timeout(where, config.timeout)
        if config.name is None and config.url is None:
            raise DefinitionError(
                f"{where}: give the tool a name (a local callable), a url, or both"
            )
        if config.url is not None and not is_http_url(config.url):
            raise DefinitionError(f"{where}: url must start with http:// or https:// (any case)")
    elif isinstance(config, VariableConfig) and config.name not in variables:
        raise DefinitionError(f"{where}: {config.name!r} is not an input variable of this workflow")


def _check_timeout(where: str, timeout: float) -> None:
    if not 0 < timeout <= MAX_TIMEOUT:
        raise DefinitionError(f"{where}: timeout must be more than 0 and at most {MAX_TIMEOUT:g} s")


def _find_cycle(deps: Mapping[str, frozenset[str]], remaining: set[str]) -> list[str]:
    """A cycle among ``remaining`` (nodes Kahn's algorithm could not order), as a path."""
    start = min(remaining)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in deps[node] if d in remaining)
    cycle = path[seen[node] :]
    cycle.reverse()  # dependencies point backwards: show the direction values flow
    first = cycle.index(min(cycle))
    cycle = cycle[first:] + cycle[:first]
    return [*cycle, cycle[0]]


def _check_acyclic(deps: Mapping[str, frozenset[str]]) -> None:
    waiting = {name: len(d) for name, d in deps.items()}
    dependants: dict[str, list[str]] = {name: [] for name in deps}
    for name, d in deps.items():
        for dep in d:
            dependants[dep].append(name)
    ready = [name for name, n in waiting.items() if n == 0]
    done = 0
    while ready:
        name = ready.pop()
        done += 1
        for child in dependants[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if done < len(deps):
        remaining = {name for name, n in waiting.items() if n > 0}
        cycle = " -> ".join(_find_cycle(deps, remaining))
        raise DefinitionError(f"the workflow has a cycle: {cycle}")


def parse_definition(raw: Any) -> WorkflowSpec:
    """Check a definition (JSON bytes or str, decoded data, or a Struct) and return its spec."""
    definition = _decode(raw)
    if not definition.nodes:
        raise DefinitionError("a workflow needs at least one node")
    if len(definition.nodes) > MAX_NODES:
        raise DefinitionError(
            f"a workflow has at most {MAX_NODES} nodes, not {len(definition.nodes)}"
        )
    if definition.timeout is not None:
        _check_timeout("the workflow", definition.timeout)
    variables = _variables(definition)
    names: dict[str, NodeDefinition] = {}
    for node in definition.nodes:
        _check_name("node", node.name)
        if node.name in names:
            raise DefinitionError(f"two nodes are named {node.name!r}; node names are unique")
        if node.name in variables:
            raise DefinitionError(
                f"node {node.name!r} has the name of an input variable; references would be ambiguous"
            )
        names[node.name] = node
    configs = {node.name: _config(node) for node in definition.nodes}
    deps: dict[str, set[str]] = {}
    refs: dict[str, dict[str, Ref]] = {}
    for node in definition.nodes:
        config = configs[node.name]
        _check_config(node, config, names, variables)
        inputs = {
            local: _ref(node.name, local, text, names, variables)
            for local, text in node.inputs.items()
        }
        refs[node.name] = inputs
        mine = {r.source for r in inputs.values() if r.kind == "node"}
        for dep in node.dependencies:
            if dep not in names:
                raise DefinitionError(f"node {node.name!r} depends on {dep!r}, which is not a node")
            if dep == node.name:
                raise DefinitionError(f"node {node.name!r} depends on itself")
            mine.add(dep)
        deps[node.name] = mine
    for name, config in configs.items():
        if isinstance(config, ConditionalConfig):
            for target in (*config.if_true, *config.if_false):
                deps[target].add(name)  # a branch runs after the choice is made
    frozen = {name: frozenset(d) for name, d in deps.items()}
    _check_acyclic(frozen)
    nodes = {
        node.name: NodeSpec(
            name=node.name,
            type=node.type,
            config=configs[node.name],
            inputs=refs[node.name],
            dependencies=frozen[node.name],
            is_output_node=node.is_output_node,
        )
        for node in definition.nodes
    }
    return WorkflowSpec(
        definition=definition, nodes=nodes, variables=variables, timeout=definition.timeout
    )
