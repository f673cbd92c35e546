"""The run pipeline: one way to run a registry prompt, from its template to its log record.

Used by the clients' ``run()``, by local workflow execution, and by ``promptrun serve``'s
workflow prompt nodes and dashboard playground; they differ only in the pipeline's ends (see
:class:`Pipeline`). This module is the package's public face: the server imports these names
and nothing below them.

``providers/`` holds the provider table and :class:`ProviderClients`, the SDK clients that
make the calls.
"""

from promptrun.pipeline._missing import warn_missing as warn_missing
from promptrun.pipeline._pipeline import Logged as Logged
from promptrun.pipeline._pipeline import Pipeline as Pipeline
from promptrun.pipeline._pipeline import PromptRef as PromptRef
from promptrun.pipeline._pipeline import Providers as Providers
from promptrun.pipeline._pipeline import RecordSink as RecordSink
from promptrun.pipeline._pipeline import Renderer as Renderer
from promptrun.pipeline._pipeline import TemplateSource as TemplateSource
from promptrun.pipeline._pipeline import render_inline as render_inline
from promptrun.pipeline._prepare import PreparedRun as PreparedRun
from promptrun.pipeline._prepare import ProviderRoutes as ProviderRoutes
from promptrun.pipeline._prepare import Template as Template
from promptrun.pipeline._prepare import needs_server_rendering as needs_server_rendering
from promptrun.pipeline._records import LogOptions as LogOptions
from promptrun.pipeline._records import dump_provider_object as dump_provider_object
from promptrun.pipeline._records import encode_record as encode_record
from promptrun.pipeline._records import new_request_id as new_request_id
from promptrun.pipeline.providers import PROVIDERS as PROVIDERS
from promptrun.pipeline.providers import SANDBOX_KEY as SANDBOX_KEY
from promptrun.pipeline.providers import TABLE as TABLE
from promptrun.pipeline.providers import CallPlan as CallPlan
from promptrun.pipeline.providers import ProviderClients as ProviderClients
from promptrun.pipeline.providers import ProviderInfo as ProviderInfo
from promptrun.pipeline.providers import ProviderKeyError as ProviderKeyError
from promptrun.pipeline.providers import import_provider_sdks as import_provider_sdks
from promptrun.pipeline.providers import open_provider_session as open_provider_session

__all__ = [
    "PROVIDERS",
    "SANDBOX_KEY",
    "TABLE",
    "CallPlan",
    "LogOptions",
    "Logged",
    "Pipeline",
    "PreparedRun",
    "PromptRef",
    "ProviderClients",
    "ProviderInfo",
    "ProviderKeyError",
    "ProviderRoutes",
    "Providers",
    "RecordSink",
    "Renderer",
    "Template",
    "TemplateSource",
    "dump_provider_object",
    "encode_record",
    "import_provider_sdks",
    "needs_server_rendering",
    "new_request_id",
    "open_provider_session",
    "render_inline",
    "warn_missing",
]
