"""Fixtures: a real promptrun server with its sandbox providers, clients, a probe."""

from .._clients import _instant_retries, make_client, probe, provider_env, server

__all__ = ["_instant_retries", "make_client", "probe", "provider_env", "server"]
