"""Provider calls: one worker per provider and base URL, one adapter per SDK.

``_table`` lists the providers (pure data), ``_adapters`` maps each to the adapter class
that calls it, ``_worker`` owns the clients, ``_keys`` turns missing or refused credentials
into errors that say what to set.
"""

from promptrun.actors.providers._adapters import split_client_options as split_client_options
from promptrun.actors.providers._base import CallPlan as CallPlan
from promptrun.actors.providers._base import status_of as status_of
from promptrun.actors.providers._keys import ProviderKeyError as ProviderKeyError
from promptrun.actors.providers._table import PROVIDERS as PROVIDERS
from promptrun.actors.providers._table import SANDBOX_KEY as SANDBOX_KEY
from promptrun.actors.providers._table import TABLE as TABLE
from promptrun.actors.providers._table import ProviderInfo as ProviderInfo
from promptrun.actors.providers._worker import ProviderWorker as ProviderWorker
from promptrun.actors.providers._worker import close_stream as close_stream
from promptrun.actors.providers._worker import import_provider_sdks as import_provider_sdks

__all__ = [
    "PROVIDERS",
    "SANDBOX_KEY",
    "TABLE",
    "CallPlan",
    "ProviderInfo",
    "ProviderKeyError",
    "ProviderWorker",
    "close_stream",
    "import_provider_sdks",
    "split_client_options",
    "status_of",
]
