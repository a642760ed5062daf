"""Hardware subcommands: ``generate`` (Verilog + manifest), ``cosim`` and ``regress``."""

from __future__ import annotations

import argparse
import json

from .errors import DelayhwError

SCHEME_CHOICES = ("fifo", "ring")


def _lanes(text: str) -> int:
    value = int(text)
    if value < 1 or value & (value - 1):
        raise argparse.ArgumentTypeError("lanes must be a power of two (1, 2, 4, ...)")
    return value


def cmd_generate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .cli import claim_output_dir
    from .formats import load_model
    from .gateware.shape import CoreShape
    from .gateware.verilog import TOP, generate

    console = Console(stderr=True)
    model = load_model(args.model)
    CoreShape.from_model(model, args.lanes, args.scheme)      # rejects what cannot be built
    out = claim_output_dir(args.out, args.force)
    with console.status(f"elaborating and converting {args.model} to Verilog"):
        info = generate(model, out, lanes=args.lanes, scheme=args.scheme, model_file=args.model)
    bits = info["memory_bits"]
    print(f"wrote {out / (TOP + '.v')} and {out / 'manifest.json'}")
    print(f"scheme {args.scheme}, {args.lanes} lane(s); memory {bits['total']} bits "
          f"({', '.join(f'{k} {v}' for k, v in bits.items() if k != 'total' and v)})")
    print(f"cycles per step: {info['cycles_per_step']['value']} "
          f"({info['cycles_per_step']['formula']})")
    if args.lint:
        from .sim.tools import compile_icarus, icarus_available, lint_verilator
        lint = lint_verilator(out / f"{TOP}.v")
        print(f"verilator --lint-only: {'clean' if lint.returncode == 0 else 'FAILED'}")
        if lint.returncode:
            print(lint.stderr)
            return 1
        if icarus_available():
            comp = compile_icarus(out / f"{TOP}.v", out / f"{TOP}.vvp")
            (out / f"{TOP}.vvp").unlink(missing_ok=True)
            print(f"iverilog: {'compiles' if comp.returncode == 0 else 'FAILED'}")
            if comp.returncode:
                print(comp.stderr)
                return 1
        else:
            print("iverilog: not installed, skipped")
    return 0


def register(sub, add_force) -> None:
    p = sub.add_parser("generate", help="write the Verilog core and manifest for a model",
                       description="Generate the neuromorphic core for MODEL: Verilog with the "
                                   "network in its memories, plus manifest.json (ports, "
                                   "payload layouts, memory bits, cycles per step).")
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--scheme", choices=SCHEME_CHOICES, default="fifo",
                   help="delay scheme (default fifo; ring is not built yet)")
    p.add_argument("--lanes", type=_lanes, default=1, help="parallel neuron lanes (power of 2)")
    p.add_argument("--lint", action="store_true",
                   help="also lint with Verilator and compile with Icarus (if installed)")
    add_force(p)
    p.set_defaults(func=cmd_generate)
