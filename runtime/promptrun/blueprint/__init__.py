"""Pure PromptLayer-shape code shared by the client and the server; no I/O.

Render prompt templates (f-string and sandboxed jinja2, under a time and size budget), turn a template and its model into a
provider's call kwargs, and turn provider responses or stream chunks back into blueprint
messages. Functions take plain dicts; those reading provider results also take the provider
SDK's objects (read by attribute, never ``model_dump``-ed on the hot path).
"""

from promptrun.blueprint._accumulator import StreamAccumulator as StreamAccumulator
from promptrun.blueprint._budget import DEFAULT_BUDGET as DEFAULT_BUDGET
from promptrun.blueprint._budget import RenderBudget as RenderBudget
from promptrun.blueprint._budget import RenderBudgetError as RenderBudgetError
from promptrun.blueprint._errors import MissingVariablesError as MissingVariablesError
from promptrun.blueprint._errors import TemplateRenderError as TemplateRenderError
from promptrun.blueprint._errors import TemplateSyntaxError as TemplateSyntaxError
from promptrun.blueprint._errors import UnsafeTemplateError as UnsafeTemplateError
from promptrun.blueprint._kwargs import DEFAULT_MODELS as DEFAULT_MODELS
from promptrun.blueprint._kwargs import apply_parameter_overrides as apply_parameter_overrides
from promptrun.blueprint._kwargs import build_llm_kwargs as build_llm_kwargs
from promptrun.blueprint._kwargs import default_parameters as default_parameters
from promptrun.blueprint._kwargs import function_name_for as function_name_for
from promptrun.blueprint._kwargs import google_call_args as google_call_args
from promptrun.blueprint._kwargs import resolve_model as resolve_model
from promptrun.blueprint._logged import log_request_blueprint as log_request_blueprint
from promptrun.blueprint._render import render_llm_kwargs as render_llm_kwargs
from promptrun.blueprint._render import render_prompt_template as render_prompt_template
from promptrun.blueprint._render import render_string as render_string
from promptrun.blueprint._render import renders_quickly as renders_quickly
from promptrun.blueprint._render import variables_in as variables_in
from promptrun.blueprint._response import kwargs_messages as kwargs_messages
from promptrun.blueprint._response import logged_blueprint as logged_blueprint
from promptrun.blueprint._response import response_message as response_message
from promptrun.blueprint._response import usage_of as usage_of
from promptrun.blueprint._stream import stream_accumulator as stream_accumulator

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_MODELS",
    "MissingVariablesError",
    "RenderBudget",
    "RenderBudgetError",
    "StreamAccumulator",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "UnsafeTemplateError",
    "apply_parameter_overrides",
    "build_llm_kwargs",
    "default_parameters",
    "function_name_for",
    "google_call_args",
    "kwargs_messages",
    "log_request_blueprint",
    "logged_blueprint",
    "render_llm_kwargs",
    "render_prompt_template",
    "render_string",
    "renders_quickly",
    "resolve_model",
    "response_message",
    "stream_accumulator",
    "usage_of",
    "variables_in",
]
