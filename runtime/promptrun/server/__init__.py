"""``promptrun serve``: a local server that speaks the PromptLayer REST API.

Import :func:`promptrun.server.app.create_app` and :class:`promptrun.server.app.ServerConfig`
to embed it; ``promptrun.testing`` runs it for tests.
"""
