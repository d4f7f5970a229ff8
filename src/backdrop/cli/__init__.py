"""The command line: subcommands, building the config, logging, errors to messages and exit codes.

Top of the dependency order: it may import every package below; nothing imports it.
"""

from backdrop.cli.main import main

__all__ = ["main"]
