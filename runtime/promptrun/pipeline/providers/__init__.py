"""Provider calls: the providers a template may name, and the clients that call them.

``_table`` lists the providers (pure data), ``_adapters`` maps each to the adapter that calls
it (one per SDK; a native aiohttp transport would be one more adapter), ``_clients`` owns the
clients (:class:`ProviderClients`), ``_keys`` turns missing or refused credentials into errors
that say what to set.
"""

from promptrun.pipeline.providers._adapters import split_client_options as split_client_options
from promptrun.pipeline.providers._base import CallPlan as CallPlan
from promptrun.pipeline.providers._base import status_of as status_of
from promptrun.pipeline.providers._clients import ProviderClients as ProviderClients
from promptrun.pipeline.providers._clients import close_stream as close_stream
from promptrun.pipeline.providers._clients import import_provider_sdks as import_provider_sdks
from promptrun.pipeline.providers._keys import ProviderKeyError as ProviderKeyError
from promptrun.pipeline.providers._session import open_provider_session as open_provider_session
from promptrun.pipeline.providers._table import PROVIDERS as PROVIDERS
from promptrun.pipeline.providers._table import SANDBOX_KEY as SANDBOX_KEY
from promptrun.pipeline.providers._table import TABLE as TABLE
from promptrun.pipeline.providers._table import ProviderInfo as ProviderInfo

__all__ = [
    "PROVIDERS",
    "SANDBOX_KEY",
    "TABLE",
    "CallPlan",
    "ProviderClients",
    "ProviderInfo",
    "ProviderKeyError",
    "close_stream",
    "import_provider_sdks",
    "open_provider_session",
    "split_client_options",
    "status_of",
]
