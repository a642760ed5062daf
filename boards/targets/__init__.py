"""Board targets, one small module each, found by name: a module in this package that defines
``TARGETS`` (a list of :class:`~delayhw.boards.target.Board`) adds its boards (docs/boards.md
says how to write one)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from delayhw.errors import DelayhwError

from ..target import Board


@lru_cache(maxsize=1)
def all_boards() -> dict[str, Board]:
    boards: dict[str, Board] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for board in getattr(module, "TARGETS", ()):
            if board.name in boards:
                raise DelayhwError(f"board {board.name!r} is defined twice ({info.name})")
            boards[board.name] = board
    return boards


def get_board(name: str) -> Board:
    boards = all_boards()
    if name not in boards:
        raise DelayhwError(f"--board: {name!r} is not a known board; choose one of "
                           f"{', '.join(sorted(boards))}")
    return boards[name]
