"""Checked argument types: every numeric option of every ``delayhw`` command parses through
one of these, so a value out of its documented range (negative, NaN, infinite, huge, not a
number) is refused by argparse as one line, exit 2, before any work starts.

Each type is a :class:`Checked` callable that carries its range (``describe()``,
``contains()``); ``delayhw.cli.limits_table`` lists them all for docs/cli-limits.md, and
tests/test_hostile_options.py finds them in the parsers and throws extreme values at them.
A new command uses these (or a new :class:`Checked`) for its numeric options, never a bare
``int`` or ``float``::

    p.add_argument("--rate", type=float_in(0, 1e6, lo_open=True), ...)
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

__all__ = ["Checked", "int_in", "float_in", "sizes", "probability", "fraction",
           "SEED_MAX", "seed"]


@dataclass(frozen=True)
class Checked:
    """An argparse type: an int or float in ``lo..hi`` (``lo_open`` / ``hi_open``: that end
    excluded), or with ``count`` a comma-separated list of 1..``count`` such ints."""

    kind: type                    # int or float
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    count: int = 0                # > 0: a list of up to this many values ("64,32")

    def describe(self) -> str:
        """The accepted values in words, e.g. ``an integer in 1..65535``."""
        if self.kind is int:
            what = f"an integer in {self.lo}..{self.hi}"
        else:
            what = (f"a number in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}"
                    f"{')' if self.hi_open else ']'}")
        if self.count:
            return f"1 to {self.count} comma-separated values, each {what}"
        return what

    def contains(self, value) -> bool:
        """Whether a parsed value is one this type accepts."""
        if self.count:
            return (isinstance(value, tuple) and 1 <= len(value) <= self.count
                    and all(self._one_ok(v) for v in value))
        return self._one_ok(value)

    def _one_ok(self, v) -> bool:
        if not isinstance(v, self.kind) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return ((self.lo < v if self.lo_open else self.lo <= v)
                and (v < self.hi if self.hi_open else v <= self.hi))

    def _one(self, text: str):
        text = text.strip()
        if len(text) > 64:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got "
                                             f"{len(text)} characters")
        try:
            value = self.kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(
                f"must be {self.describe()}, got {text!r}") from None
        if not self._one_ok(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value

    def __call__(self, text: str):
        if not self.count:
            return self._one(text)
        parts = [p for p in text.split(",") if p.strip()]
        if not 1 <= len(parts) <= self.count:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return tuple(self._one(p) for p in parts)


def int_in(lo: int, hi: int) -> Checked:
    """An integer in ``lo..hi`` (both included)."""
    return Checked(int, lo, hi)


def float_in(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Checked:
    """A finite number in ``[lo, hi]`` (``lo_open`` / ``hi_open``: that end excluded)."""
    return Checked(float, lo, hi, lo_open, hi_open)


def sizes(lo: int, hi: int, count: int) -> Checked:
    """1..``count`` comma-separated integers in ``lo..hi`` (e.g. layer sizes ``64,32``)."""
    return Checked(int, lo, hi, count=count)


#: A probability in (0, 1] and a fraction in [0, 1].
probability = float_in(0, 1, lo_open=True)
fraction = float_in(0, 1)

#: Seeds: what numpy and torch both accept (0 .. 2^32 - 1).
SEED_MAX = (1 << 32) - 1
seed = int_in(0, SEED_MAX)


# ----------------------------------------------------------------------------- discovery


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommand parsers of ``parser`` by name (``delayhw.cli.build_parser()``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """Every ``(command, action)`` of ``parser``'s subcommands that takes a value through a
    type other than str (what must be a :class:`Checked` or limited by ``choices``)."""
    return [(name, action) for name, sub in commands(parser).items()
            for action in sub._actions
            if action.option_strings and action.nargs != 0 and action.type not in (None, str)]


def limits_table(parser: argparse.ArgumentParser) -> str:
    """A Markdown table of every numeric option's accepted values (docs/cli-limits.md)."""
    rows = ["| command | option | accepted values |", "|---|---|---|"]
    for name, action in options(parser):
        flag = max(action.option_strings, key=len)
        if isinstance(action.type, Checked):
            what = action.type.describe()
        elif action.choices is not None:
            what = "one of " + ", ".join(map(str, action.choices))
        else:
            what = "(unchecked)"
        rows.append(f"| {name} | `{flag}` | {what} |")
    return "\n".join(rows) + "\n"


#: UART baud rates a serial port can be asked for (docs/cli-limits.md).
BAUD = int_in(1, 12_000_000)
#: Seconds to wait for a board's reply.
TIMEOUT = float_in(0, 86_400, lo_open=True)
