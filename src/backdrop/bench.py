"""`backdrop bench` (being written)."""


def add_parser(sub) -> None:
    sub.add_parser("bench", help="measure the live pipeline's speed")


def cmd_bench(args) -> int:
    raise NotImplementedError
