"""The client's ends of the run pipeline (:mod:`promptrun.pipeline`).

- :class:`RegistryTemplates`, the template source: the PromptLayer registry through the
  client's :class:`~promptrun._template_cache.TemplateCache`; a template with placeholders is
  fetched rendered, since only the registry can rebuild its kwargs.
- :class:`ShipperSink`, the record sink: the log shipper, without waiting (the record is in
  the spool when ``run()`` returns); :class:`InlineSink` with ``inline_logging=True``: the
  server's ``/track-request``, whose id and blueprint the caller gets, as the peer SDK does.

Providers are reached with this process's keys, at the client's ``provider_base_urls`` or the
SDKs' own environment variables.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from promptrun._errors import PromptLayerError
from promptrun._http import ApiTransport, segment
from promptrun._template_cache import TEMPLATE_SHAPE, TemplateCache, registry_params
from promptrun.actors._delivery import LOGGED_SHAPE
from promptrun.actors.shipper import LogShipper
from promptrun.pipeline import (
    Logged,
    PromptRef,
    Template,
    encode_record,
    needs_server_rendering,
)
from promptrun.wire.ingest import TrackRecord
from promptrun.wire.tracking import IDEMPOTENCY_KEY

__all__ = ["InlineSink", "RegistryTemplates", "ShipperSink"]

logger = logging.getLogger("promptlayer")


class RegistryTemplates:
    """Templates from the registry, through the template cache."""

    def __init__(self, cache: TemplateCache, transport: ApiTransport) -> None:
        self.cache = cache
        self._transport = transport

    async def template(self, ref: PromptRef, variables: dict[str, Any]) -> Template:
        return (await self.template_and_outcome(ref, variables))[0]

    async def template_and_outcome(
        self, ref: PromptRef, variables: dict[str, Any]
    ) -> tuple[Template, str]:
        """The template, and how the cache answered (``rendered``: fetched rendered)."""
        body, outcome = await self.cache.lookup(ref)
        if needs_server_rendering(body.get("prompt_template", {})):
            rendered = await self.fetch(ref, {"input_variables": variables})
            return Template(rendered, rendered=True), "rendered"
        return Template(body), outcome

    async def fetch(self, ref: PromptRef, extra: dict[str, Any]) -> dict[str, Any]:
        """A fetch the cache cannot serve: rendered by the registry, or with metadata filters."""
        body = {**registry_params(ref), **extra, "api_key": self._transport.api_key}
        body.pop("skip_input_variable_rendering", None)
        answer = await self._transport.call(
            "POST",
            f"/prompt-templates/{segment(ref.name)}",
            body=body,
            context=f"fetching prompt template {ref.name!r}",
            shape=TEMPLATE_SHAPE,
        )
        return cast(dict[str, Any], answer)


class ShipperSink:
    """Records go to the log shipper: on disk when this returns, shipped in the background."""

    def __init__(self, shipper: LogShipper) -> None:
        self.shipper = shipper

    async def log(self, record: TrackRecord) -> Logged:
        self.shipper.submit(record)
        return Logged(record.client_request_id)

    async def log_failure(self, record: TrackRecord) -> None:
        self.shipper.submit(record)


class InlineSink(ShipperSink):
    """A run's record waits for the server (``/track-request``): its id and blueprint are
    the caller's. Failed runs, and records the server does not take, go to the shipper."""

    def __init__(self, shipper: LogShipper, transport: ApiTransport) -> None:
        super().__init__(shipper)
        self._transport = transport

    async def log(self, record: TrackRecord) -> Logged:
        body = {**record.body, "api_key": self._transport.api_key, "return_prompt_blueprint": True}
        try:
            answer = await self._transport.call(
                "POST",
                "/track-request",
                body=encode_record(body),
                context="logging the request",
                shape=LOGGED_SHAPE,
                # Sent again from the spool if the answer is lost: stored once all the same.
                headers={IDEMPOTENCY_KEY: record.client_request_id},
            )
            if answer.get("success") is False:  # refused with a success status
                raise PromptLayerError(f"logging the request: {answer.get('message', answer)!r}")
        except (PromptLayerError, UnicodeEncodeError) as exc:
            # The LLM answered: never lose that answer to a logging failure.
            logger.warning("logging inline failed (%s); shipping it in the background", exc)
            self.shipper.submit(record)
            return Logged(record.client_request_id)
        blueprint = answer.get("prompt_blueprint")
        return Logged(answer.get("request_id"), blueprint if isinstance(blueprint, dict) else None)
