"""The ``delayhw`` command line. Heavy parts (torch, amaranth, cocotb) are imported lazily
inside each command so ``delayhw --help`` and ``delayhw golden`` start fast.

Exit codes: 0 success, 1 a check failed (e.g. RTL != golden), 2 bad input (a DelayhwError,
printed as one line, no traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import DelayhwError

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


# ----------------------------------------------------------------------------- output rules


def claim_output_file(path: str | os.PathLike, force: bool) -> Path:
    """An output file path the user may write: refuses to replace an existing file unless
    ``force``."""
    path = Path(path)
    if path.is_dir():
        raise DelayhwError(f"{path}: --out: is a directory, expected a file name")
    if path.exists() and not force:
        raise DelayhwError(f"{path}: --out: file exists; pass --force to overwrite it")
    return path


def claim_output_dir(path: str | os.PathLike, force: bool) -> Path:
    """An output directory: created if missing; an existing non-empty one needs ``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DelayhwError(f"{path}: -o: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise DelayhwError(f"{path}: -o: directory is not empty; pass --force to write into it")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- commands


def cmd_golden(args: argparse.Namespace) -> int:
    from . import golden
    from .formats import load_input, load_model

    out = claim_output_file(args.out, args.force)
    model = load_model(args.model)
    inputs = load_input(args.input, model)
    result = golden.run(model, inputs.spikes)
    result.save(out)
    batch, steps = inputs.spikes.shape[:2]
    print(f"golden: {batch} samples x {steps} steps -> {out}")
    if inputs.labels is not None:
        print(f"accuracy: {100 * result.accuracy(inputs.labels):.2f}% "
              f"({int((result.predictions == inputs.labels).sum())}/{batch})")
    return EXIT_OK


def _add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="delayhw",
        description="Spiking networks with learned synaptic delays, in bit-exact verified "
                    "hardware: train, export, simulate, generate Verilog, co-simulate, build.")
    from . import __version__
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

    from . import cli_boards, cli_demo, cli_hw, cli_train
    cli_train.register(sub, _add_force)      # train, export
    cli_hw.register(sub, _add_force)         # generate, cosim, regress
    cli_boards.register(sub, _add_force)     # build, run
    cli_demo.register(sub, _add_force)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except DelayhwError as exc:
        print(f"delayhw: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("delayhw: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
