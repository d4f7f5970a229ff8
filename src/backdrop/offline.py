"""`backdrop image` and `backdrop video` (being written)."""

COMMANDS = {}


def add_parsers(sub) -> None:
    pass
