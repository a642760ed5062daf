"""``delayhw demo``: the whole flow on a small network, end to end.

train (synthetic task, learned delays) -> export -> golden model on the test set -> Verilog
(linted) -> co-simulation in Verilator -> report + plot.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .common import EXIT_MISMATCH, EXIT_OK, add_core_options, add_force, progress, seed

def _stage(console, text: str):
    console.rule(f"[bold]{text}")
    return time.perf_counter()


def _train(out: Path, seed: int, console, shown):
    """Train the synthetic delay task; the model file, the model, its test inputs, report."""
    from ..formats import load_input, load_model
    from ..train.api import train_task

    report = train_task("synthetic", out / "model.npz", force=True, seed=seed,
                        plots_dir=out / "train")
    model = load_model(report.model_path)
    inputs = load_input(report.test_input_path, model)
    console.print(f"float {100 * report.float_accuracy:.1f}%, exported integer model "
                  f"{100 * report.integer_accuracy:.1f}% on {len(inputs.labels)} test samples "
                  f"({report.seconds:.1f} s) -> {shown(report.model_path)}")
    return report.model_path, model, inputs, report


def cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .. import golden
    from ..gateware.protocol import first_difference
    from ..gateware.verilog import TOP, generate
    from ..plots import agreement_plot
    from ..publish import Outputs, show_path
    from ..sim import cosim
    from ..sim.tools import lint_verilator

    console = Console()
    outputs = Outputs(force=args.force)
    out = outputs.directory(args.out)       # everything is made here, published at the end

    def shown(path) -> str:
        return show_path(Path(args.out) / Path(path).relative_to(out))

    times = {}

    t = _stage(console, "1. train (synthetic task that only delays can solve) and export")
    model_path, model, inputs, report = _train(out, args.seed, console, shown)
    console.print(f"{model.n_inputs} inputs -> " + " -> ".join(
        f"{l.name} [{l.size} {l.kind}{', recurrent' if l.recurrent else ''}, d_max {l.d_max}]"
        for l in model.layers))
    times["train"] = time.perf_counter() - t

    t = _stage(console, "2. golden model")
    expected = golden.run(model, inputs.spikes)
    expected.save(out / "golden_result.npz")
    console.print(f"golden accuracy on {len(inputs.labels)} test samples: "
                  f"{100 * expected.accuracy(inputs.labels):.1f}%")
    times["golden"] = time.perf_counter() - t

    t = _stage(console, "3. Verilog")
    info = generate(model, out / "hw", lanes=args.lanes, scheme=args.scheme,
                    model_file=str(model_path))
    lint = lint_verilator(out / "hw" / f"{TOP}.v")
    console.print(f"{shown(out / 'hw' / (TOP + '.v'))}: {info['memory_bits']['total']} memory bits, "
                  f"{info['cycles_per_step']['value']} cycles/step; verilator lint "
                  f"{'clean' if lint.returncode == 0 else 'FAILED'}")
    times["generate"] = time.perf_counter() - t

    t = _stage(console, "4. co-simulation in Verilator (cocotb)")
    batch = inputs.spikes.shape[0]
    with progress() as bar:
        task = bar.add_task("verilator", total=batch)
        run = cosim.run_rtl(model, inputs.spikes, sim="verilator", lanes=args.lanes,
                            scheme=args.scheme,
                            on_progress=lambda n: bar.update(task, completed=n))
    run.result.save(out / "rtl_result.npz")
    difference = first_difference(expected, run.result)
    times["cosim"] = time.perf_counter() - t

    t = _stage(console, "5. report")
    plot = agreement_plot(expected, run.result, out / "agreement.png",
                          title="delayhw demo: RTL (Verilator) vs golden model")
    table = Table(title="delayhw demo")
    table.add_column("what")
    table.add_column("result")
    table.add_row("network", f"{model.n_inputs} -> " + " -> ".join(str(l.size) for l in model.layers))
    table.add_row("core", f"scheme {args.scheme}, {args.lanes} lane(s)")
    table.add_row("test accuracy: float / golden / RTL",
                  f"{100 * report.float_accuracy:.1f}% / {100 * expected.accuracy(inputs.labels):.1f}%"
                  f" / {100 * run.result.accuracy(inputs.labels):.1f}%")
    table.add_row("RTL == golden", "yes, bit for bit" if difference is None
                  else f"NO: first difference at {difference}")
    table.add_row("spikes compared", str(sum(int(s.sum()) for s in expected.spikes)))
    table.add_row("simulated cycles", f"{run.cycles:,} ({run.cycles_per_second:,.0f} cycles/s)")
    table.add_row("Verilog", shown(out / "hw" / f"{TOP}.v"))
    table.add_row("plots", f"{shown(plot)}, {shown(out / 'train')}/")
    table.add_row("time", ", ".join(f"{k} {v:.1f}s" for k, v in times.items()))
    outputs.publish()
    console.print(table)
    return EXIT_OK if difference is None else EXIT_MISMATCH


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole flow on a small network",
                       description="Run the delayhw flow end to end on a small network: train "
                                   "it (learned delays, quantisation-aware), export, golden "
                                   "model, Verilog, co-simulation in Verilator, report and "
                                   "plots.")
    p.add_argument("-o", "--out", default="demo_out", help="output directory (default demo_out)")
    p.add_argument("--seed", type=seed, default=0, help="training seed (default 0)")
    add_core_options(p, lanes_default=1)
    add_force(p)
    p.set_defaults(func=cmd_demo)
