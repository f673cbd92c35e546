"""HTTP routes of ``promptrun serve``, one ``RouteTableDef`` per module."""
