"""The ``promptrun`` subcommands other than ``serve``, one module each.

Each module has ``add_parser(commands)`` (argparse only, cheap to import) and does its work in
functions that import the client, aiohttp or PyYAML when they run.
"""
