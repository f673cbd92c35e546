"""The ``promptrun`` subcommands other than ``serve``, one module each, and what they share.

Each command module (``_quickstart``, ``_prompt_run``, ``_templates``, ``_logs``,
``_workflows``) has ``add_parser(commands)`` (argparse only, cheap to import) and does its work
in functions that import the client, aiohttp or PyYAML when they run. ``_common`` holds the
parser, option types and connection options; ``_output`` tables, colour, links and costs;
``_push`` the idempotent publishing that ``templates push`` and ``quickstart`` share.
"""
