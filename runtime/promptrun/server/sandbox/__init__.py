"""Offline stand-ins for OpenAI, Azure OpenAI, Anthropic, Gemini, Bedrock, Vertex AI, Mistral
and OpenRouter.

The official SDKs work against them unchanged, with any non-empty key, when pointed at
(``<server>`` being where the app is mounted, ``/sandbox`` under ``promptrun serve``):

- ``<server>/openai/v1`` (``OPENAI_BASE_URL``): chat completions, completions, responses, models
- ``<server>/azure`` as ``azure_endpoint``: deployment chat completions and completions
- ``<server>/anthropic`` (``ANTHROPIC_BASE_URL``): messages
- ``<server>/google`` (``GOOGLE_GEMINI_BASE_URL``): ``generateContent``, ``streamGenerateContent``
- ``<server>/bedrock`` (``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``, ``ANTHROPIC_BEDROCK_BASE_URL``):
  Converse, ConverseStream, InvokeModel (Anthropic bodies) and its response stream, in AWS
  event-stream framing; requests must carry a SigV4-shaped ``Authorization`` (not verified)
- ``<server>/vertex`` (``GOOGLE_VERTEX_BASE_URL``; ``.../vertex/v1`` for
  ``ANTHROPIC_VERTEX_BASE_URL``): Gemini's and Claude's (``rawPredict``) Vertex paths, and an
  OAuth token endpoint at ``<server>/vertex/token`` for offline credentials
- ``<server>/mistral`` (``MISTRAL_BASE_URL``) and ``<server>/openrouter/api/v1``
  (``OPENROUTER_BASE_URL``): chat completions

Replies are deterministic (:func:`sandbox_reply`); token usage is about 4/3 of the word count.
A request that offers tools and whose last user text has the word "tool" gets a call to the
first tool instead, with sample values for its required arguments.

``<server>/_control`` reads (GET), changes (POST) and resets (DELETE) the settings, the queued
failures and the request statistics; it needs the server's API key in the ``X-API-KEY`` header
(or ``Authorization: Bearer``), and a POST needs ``Content-Type: application/json``. Values are
bounded: ``latency_ms`` up to 60000, ``chunks`` 1 to 1000, ``chunk_delay_ms`` up to 10000,
``retry_after`` up to 3600 s, ``times`` up to 10000, 1000 queued failures. A POST body may hold ``latency_ms``, ``chunks``,
``chunk_delay_ms``, ``reset: true`` and ``fail``: a list of ``{"status": 429, "retry_after": 1.0}``,
``{"status": 500}``, ``{"cut_after_chunks": 2}`` or ``{"hang": true}``, each optionally with
``"provider"`` (``openai``, ``azure``, ``anthropic``, ``google``) and ``"times"``. Queued failures
are used, in order, by the next requests they apply to. One request can override with the
headers ``x-sandbox-latency-ms``, ``x-sandbox-chunks`` and ``x-sandbox-fail`` (``429``, ``500``,
``cut:N`` or ``hang``).
"""

from promptrun.server.sandbox._app import ControlAuth as ControlAuth
from promptrun.server.sandbox._app import create_sandbox_app as create_sandbox_app
from promptrun.server.sandbox._reply import sandbox_reply as sandbox_reply
from promptrun.server.sandbox._state import SandboxSettings as SandboxSettings

__all__ = ["ControlAuth", "SandboxSettings", "create_sandbox_app", "sandbox_reply"]
