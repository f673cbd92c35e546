"""Fixtures: a real promptrun server with its sandbox providers, clients, a probe, and the
environment of scripts run as processes of their own."""

from .._clients import _instant_retries, make_client, probe, provider_env, server
from ._scripts import script_env

__all__ = ["_instant_retries", "make_client", "probe", "provider_env", "script_env", "server"]
