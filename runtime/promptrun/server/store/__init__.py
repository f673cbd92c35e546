"""Persistence for ``promptrun serve``: the :class:`~.base.Store` interface and its backends."""
