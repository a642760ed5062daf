"""The ``delayhw`` command line. Heavy parts (torch, amaranth, cocotb) are imported lazily
inside each command so ``delayhw --help`` and ``delayhw golden`` start fast.

Exit codes: 0 success, 1 a check failed (e.g. RTL != golden), 2 bad input (a DelayhwError
or an argument error, printed as one line, no traceback), 130 interrupted (SIGINT), 143
terminated (SIGTERM). Outputs are published through :class:`delayhw.publish.Outputs`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Callable, Sequence

from ..errors import DelayhwError
from ..publish import Outputs, show_path

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


# ----------------------------------------------------------------------------- commands


def cmd_golden(args: argparse.Namespace) -> int:
    from .. import golden
    from ..formats import load_input, load_model

    with Outputs(force=args.force, inputs=[args.model, args.input]) as outputs:
        staged = outputs.file(args.out)
        model = load_model(args.model)
        inputs = load_input(args.input, model)
        result = golden.run(model, inputs.spikes)
        result.save(staged)
    batch, steps = inputs.spikes.shape[:2]
    print(f"golden: {batch} samples x {steps} steps -> {show_path(args.out)}")
    if inputs.labels is not None:
        print(f"accuracy: {100 * result.accuracy(inputs.labels):.2f}% "
              f"({int((result.predictions == inputs.labels).sum())}/{batch})")
    return EXIT_OK


def _add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


class _UsageError(Exception):
    """A command-line argument error, already printed."""


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error rule: one line naming the argument and the rule
    (plus where to find help), exit code 2 returned by :func:`main`, not raised."""

    def error(self, message: str):
        print(f"{self.prog}: error: {show_path(message)} (see {self.prog} --help)",
              file=sys.stderr)
        raise _UsageError()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="delayhw",
        description="Spiking networks with learned synaptic delays, in bit-exact verified "
                    "hardware: train, export, simulate, generate Verilog, co-simulate, build.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"delayhw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("golden", help="run the bit-exact golden model on an input file",
                       description="Run the golden model (DESIGN.md section 3) of MODEL on "
                                   "INPUT and write a result file.")
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("input", metavar="INPUT", help="input file (.npz) with spikes [and labels]")
    p.add_argument("--out", required=True, metavar="RESULT.npz", help="result file to write")
    _add_force(p)
    p.set_defaults(func=cmd_golden)

    from . import boards as cli_boards, demo as cli_demo, hw as cli_hw, train as cli_train
    cli_train.register(sub, _add_force)      # train, export
    cli_hw.register(sub, _add_force)         # generate, cosim, regress
    cli_boards.register(sub, _add_force)     # build, run
    cli_demo.register(sub, _add_force)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so staged outputs are cleaned up on the way out."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError:
        return EXIT_BAD_INPUT
    func: Callable[[argparse.Namespace], int] = args.func
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        return func(args)
    except DelayhwError as exc:
        print(f"delayhw: error: {show_path(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("delayhw: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("delayhw: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
