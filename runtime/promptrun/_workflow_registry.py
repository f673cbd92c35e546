"""``client.workflows``: publish workflow versions from code, as ``templates.publish`` does
for prompt templates. Running them is ``run_workflow``; reading them is ``GET /workflows``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptrun._boundary import public
from promptrun._validate import check_dict, check_str, check_str_list

if TYPE_CHECKING:
    from promptrun._client import AsyncPromptLayer

__all__ = ["AsyncWorkflows"]


class AsyncWorkflows:
    """``client.workflows``: publish workflow versions."""

    def __init__(self, client: AsyncPromptLayer) -> None:
        self._client = client

    @public
    async def publish(self, body: dict[str, Any]) -> Any:
        """Publish a new version: ``{"workflow_name", "definition", "commit_message"?,
        "release_labels"?}``; returns ``{"success", "workflow", "version_number"}``.

        ``definition`` is the format documented in :mod:`promptrun.workflows`; the server
        refuses one that cannot run with a ``PromptLayerBadRequestError`` naming the node and
        the problem. ``release_labels`` move to the new version. ``None`` on failure with
        throw_on_error=False.
        """
        where = "workflows.publish()"
        check_dict(where, "body", body, optional=False)
        check_str(where, 'body["workflow_name"]', body.get("workflow_name"))
        check_dict(where, 'body["definition"]', body.get("definition"), optional=False)
        check_str(where, 'body["commit_message"]', body.get("commit_message"), optional=True)
        check_str_list(where, 'body["release_labels"]', body.get("release_labels"))
        name = body["workflow_name"]
        wire = {k: v for k, v in body.items() if v is not None}

        async def call() -> Any:
            return await self._client._post(
                "/rest/workflows", wire, f"publishing workflow {name!r}", expect=(201,)
            )

        return await self._client._or_warn(f"publishing workflow {name!r}", None, call)
