"""promptrun: run registry prompts on LLM providers and log every request."""

from promptrun._client import AsyncPromptLayer as AsyncPromptLayer
from promptrun._errors import PromptLayerAPIConnectionError as PromptLayerAPIConnectionError
from promptrun._errors import PromptLayerAPIError as PromptLayerAPIError
from promptrun._errors import PromptLayerAPIStatusError as PromptLayerAPIStatusError
from promptrun._errors import PromptLayerAPITimeoutError as PromptLayerAPITimeoutError
from promptrun._errors import PromptLayerAuthenticationError as PromptLayerAuthenticationError
from promptrun._errors import PromptLayerBadRequestError as PromptLayerBadRequestError
from promptrun._errors import PromptLayerConflictError as PromptLayerConflictError
from promptrun._errors import PromptLayerError as PromptLayerError
from promptrun._errors import PromptLayerInternalServerError as PromptLayerInternalServerError
from promptrun._errors import PromptLayerNotFoundError as PromptLayerNotFoundError
from promptrun._errors import PromptLayerPermissionDeniedError as PromptLayerPermissionDeniedError
from promptrun._errors import PromptLayerRateLimitError as PromptLayerRateLimitError
from promptrun._errors import (
    PromptLayerUnprocessableEntityError as PromptLayerUnprocessableEntityError,
)
from promptrun._errors import PromptLayerValidationError as PromptLayerValidationError
from promptrun._sync import PromptLayer as PromptLayer
from promptrun._types import GetTemplateResult as GetTemplateResult
from promptrun._types import LogRequestResult as LogRequestResult
from promptrun._types import PromptBlueprint as PromptBlueprint
from promptrun._types import PublishResult as PublishResult
from promptrun._types import RunResult as RunResult
from promptrun._types import StreamItem as StreamItem
from promptrun._types import TemplateListItem as TemplateListItem
from promptrun._types import WorkflowNodeResult as WorkflowNodeResult
from promptrun._version import __version__ as __version__

__all__ = [
    "AsyncPromptLayer",
    "GetTemplateResult",
    "LogRequestResult",
    "PromptBlueprint",
    "PromptLayer",
    "PromptLayerAPIConnectionError",
    "PromptLayerAPIError",
    "PromptLayerAPIStatusError",
    "PromptLayerAPITimeoutError",
    "PromptLayerAuthenticationError",
    "PromptLayerBadRequestError",
    "PromptLayerConflictError",
    "PromptLayerError",
    "PromptLayerInternalServerError",
    "PromptLayerNotFoundError",
    "PromptLayerPermissionDeniedError",
    "PromptLayerRateLimitError",
    "PromptLayerUnprocessableEntityError",
    "PromptLayerValidationError",
    "PublishResult",
    "RunResult",
    "StreamItem",
    "TemplateListItem",
    "WorkflowNodeResult",
    "__version__",
]
