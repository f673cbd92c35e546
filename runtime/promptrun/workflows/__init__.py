"""Workflows: multi-step pipelines of prompt, code, conditional, tool and value nodes.

A workflow version is a JSON document. Publish it with ``POST /rest/workflows`` (versions and
release labels work like templates'), run it with ``run_workflow`` (on the server, or locally
with ``execution="local"``). The same engine runs it in both places.

The definition format
=====================

::

    {
      "input_variables": ["article", {"name": "tone", "default": "neutral"}],
      "timeout": 120,
      "nodes": [
        {"name": "summary", "type": "prompt_template",
         "configuration": {"prompt_name": "summarize", "label": "prod"},
         "inputs": {"text": "article"}},
        {"name": "words", "type": "code",
         "configuration": {"code": "return len(text.split())"},
         "inputs": {"text": "summary"}},
        {"name": "short", "type": "conditional",
         "configuration": {"expression": "n <= 40", "if_true": ["keep"], "if_false": ["trim"]},
         "inputs": {"n": "words"}},
        {"name": "keep", "type": "variable", "configuration": {"name": "tone"},
         "is_output_node": true},
        {"name": "trim", "type": "tool",
         "configuration": {"name": "trim", "url": "http://127.0.0.1:9000/trim"},
         "inputs": {"text": "summary"}, "is_output_node": true}
      ]
    }

Top level:

- ``nodes`` (required, 1 to 500): the nodes, in the order results are reported.
- ``input_variables``: names (required when running) or ``{"name", "default", "description"}``
  objects (optional, with a default). A run may not omit a required one; extra ones given
  are ignored with a warning.
- ``timeout``: seconds for the whole run; when it passes, running nodes fail and waiting ones
  are skipped. Without it the server allows an hour; a client's ``timeout=`` also applies.
- ``description``: free text.

Each node:

- ``name`` (required): unique, 1 to 128 characters, no ``.``, not an input variable's name.
- ``type`` (required): ``prompt_template``, ``code``, ``conditional``, ``tool``, ``value`` or
  ``variable``; its ``configuration`` is described below.
- ``inputs``: ``{local name: reference}``. A reference is an input variable's name or a
  node's name, optionally followed by a key path into its value (``"lookup.items.0.id"``).
  Local names are identifiers: they become the prompt's variables, the code's parameters,
  the expression's names, the tool's JSON keys or keyword arguments.
- ``dependencies``: other nodes that must succeed first although nothing is read from them.
- ``is_output_node``: whether the node's value is a result of the workflow.

Node types and their ``configuration``:

- ``prompt_template``: ``prompt_name``, and ``version`` or ``label`` (else the latest);
  ``output`` is ``"text"`` (default: the reply's text), ``"json"`` (the text parsed) or
  ``"message"`` (the whole output message, e.g. for tool calls);
  ``model_parameter_overrides``. The inputs are the template's variables. The run is logged
  like any request, its metadata linking it to the execution (``workflow_version_execution_id``,
  ``workflow_node_name``, ``workflow_name``).
- ``code``: ``code`` (Python; the body of a function whose keyword parameters are the inputs;
  ``return`` gives the value, which must be JSON), ``timeout`` (seconds, default 10). It runs in
  a fresh interpreter in a kernel sandbox (bubblewrap): the standard library only, an empty
  environment, a private size-capped ``/tmp``, no host files, network, processes or threads
  (see :mod:`promptrun.workflows._code_sandbox` and :mod:`promptrun.workflows._bwrap`).
- ``conditional``: ``expression`` (a jinja2 expression over the inputs, evaluated in a
  sandbox), ``if_true`` and ``if_false`` (lists of node names). The value is the expression's
  truth; the nodes of the branch not taken are SKIPPED, with the reason. Branch nodes run
  after the conditional without listing it.
- ``tool``: ``name`` (a Python callable given as ``tools={"name": fn}`` in local execution,
  called with the inputs as keyword arguments), ``url`` (an endpoint that takes the inputs as a
  JSON POST body and answers JSON; the server calls only these, and only where its
  ``--tool-url`` allows: see :mod:`promptrun.workflows._destinations`), ``timeout`` (seconds,
  default 30), ``headers``.
- ``value``: ``value``, any JSON, returned as it is.
- ``variable``: ``name``, an input variable, returned as it is.

Publishing rejects (400) a definition with a cycle (its path is named), a reference to a
node or variable that does not exist, an unknown node type, a configuration that does not fit
its type, code that does not compile or an expression that does not parse, each naming the
node.

Running
=======

Nodes run as soon as every node they depend on has succeeded; independent ones run at the
same time. A node that fails makes everything downstream of it FAILED ("not run: upstream
node 'x' failed"); the rest of the workflow carries on. Each node's result has ``status``
(``SUCCESS``, ``FAILED`` or ``SKIPPED``), ``value``, ``error_message``, ``raw_error_message``
and ``is_output_node``; the server also keeps its timing and logged request
(``GET /promptrun/v1/workflow-executions/{id}``).

``run_workflow`` returns the value of the final output node, the last output node (in
definition order) that succeeded, or with ``return_all_outputs=True`` the results of every
node by name.
"""

from promptrun.workflows.definition import DefinitionError as DefinitionError
from promptrun.workflows.definition import WorkflowDefinition as WorkflowDefinition
from promptrun.workflows.definition import WorkflowSpec as WorkflowSpec
from promptrun.workflows.definition import parse_definition as parse_definition
from promptrun.workflows.engine import NodeResult as NodeResult
from promptrun.workflows.engine import WorkflowRun as WorkflowRun

__all__ = [
    "DefinitionError",
    "NodeResult",
    "WorkflowDefinition",
    "WorkflowRun",
    "WorkflowSpec",
    "parse_definition",
]
