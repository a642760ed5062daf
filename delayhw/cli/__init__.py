"""The ``delayhw`` command line: the parser, assembled from one module per command group,
and :func:`main`. Heavy parts (torch, amaranth, cocotb) are imported lazily inside each
command so ``delayhw --help`` and ``delayhw golden`` start fast.

- ``common``: exit codes, the parser's error rule, shared options and argument types,
  error reporting, progress, the report against the golden model;
- ``hw``: golden, generate, cosim, regress;  ``train``: train, export;
  ``audio``: encode, classify;  ``boards``: build, run;  ``demo``: demo.

Command modules import ``common`` and never this package (tests/test_cli_package.py).

Exit codes: 0 success, 1 a check failed (e.g. RTL != golden), 2 bad input (a DelayhwError
or an argument error, printed as one line, no traceback), 130 interrupted (SIGINT), 143
terminated (SIGTERM). Outputs are published through :class:`delayhw.publish.Outputs`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .argtypes import Checked, options
from .common import (EXIT_BAD_INPUT, EXIT_MISMATCH, EXIT_OK, Parser, Terminated,
                     UsageError, run_command)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_MISMATCH", "EXIT_BAD_INPUT", "Terminated"]

#: The command groups, in the order of ``delayhw --help``.
GROUPS = ("hw", "train", "audio", "boards", "demo")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from .. import __version__
    parser = Parser(
        prog="delayhw",
        description="Spiking networks with learned synaptic delays, in bit-exact verified "
                    "hardware: train, export, simulate, generate Verilog, co-simulate, build.")
    parser.add_argument("--version", action="version", version=f"delayhw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        importlib.import_module(f"{__name__}.{group}").register(sub)
    for _, action in options(parser):           # every --help names the accepted range
        if isinstance(action.type, Checked) and action.help is not argparse.SUPPRESS:
            action.help = f"{action.help or ''} [{action.type.describe()}]".lstrip()
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError:
        return EXIT_BAD_INPUT
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
