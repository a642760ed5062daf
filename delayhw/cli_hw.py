"""Hardware subcommands: ``generate`` (Verilog + manifest), ``cosim`` and ``regress``."""

from __future__ import annotations

import argparse
import json

from .errors import DelayhwError
from .gateware.shape import MAX_STEPS

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
    # rejects what cannot be built before anything is written
    shape = CoreShape.from_model(model, args.lanes, args.scheme, args.max_steps)
    out = claim_output_dir(args.out, args.force)
    with console.status(f"elaborating and converting {args.model} to Verilog"):
        info = generate(model, out, lanes=args.lanes, scheme=args.scheme,
                        max_steps=args.max_steps, model_file=args.model)
    bits = info["memory_bits"]
    print(f"wrote {out / (TOP + '.v')} and {out / 'manifest.json'}")
    print(f"scheme {args.scheme}, {args.lanes} lane(s); memory {bits['total']} bits "
          f"({', '.join(f'{k} {v}' for k, v in bits.items() if k != 'total' and v)})")
    print(f"cycles per step: {info['cycles_per_step']['value']} "
          f"({info['cycles_per_step']['formula']})")
    print(f"scores: {shape.score_bits} bits, exact for samples of up to {shape.max_steps} "
          f"steps (longer samples are flagged in their SAMPLE event)")
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


def _progress():
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), transient=False)


def cmd_cosim(args: argparse.Namespace) -> int:
    from . import golden
    from .cli import EXIT_MISMATCH, claim_output_file
    from .formats import load_input, load_model
    from .gateware.protocol import first_difference
    from .gateware.shape import CoreShape
    from .sim import cosim, runner

    out = claim_output_file(args.out, args.force)
    model = load_model(args.model)
    inputs = load_input(args.input, model)
    CoreShape.from_model(model, args.lanes, args.scheme)      # rejects what cannot be built
    runner.check_simulator(args.sim)
    batch, steps = inputs.spikes.shape[:2]
    with _progress() as bar:
        task = bar.add_task(f"{args.sim}: {batch} samples x {steps} steps", total=batch)
        run = cosim.run_rtl(model, inputs.spikes, sim=args.sim, scheme=args.scheme,
                            lanes=args.lanes, ready_prob=args.ready_prob,
                            on_progress=lambda n: bar.update(task, completed=n))
    run.result.save(out)
    expected = golden.run(model, inputs.spikes)
    difference = first_difference(expected, run.result)
    print(f"RTL result written to {out}")
    print(f"simulated {run.cycles} cycles in {run.sim_seconds:.2f} s "
          f"({run.cycles_per_second:,.0f} cycles/s; {run.total_seconds:.1f} s with build and "
          f"start-up)")
    if inputs.labels is not None:
        print(f"accuracy: RTL {100 * run.result.accuracy(inputs.labels):.2f}%, golden "
              f"{100 * expected.accuracy(inputs.labels):.2f}% ({batch} samples)")
    if difference is None:
        n_spikes = sum(int(s.sum()) for s in expected.spikes)
        print(f"agreement: RTL == golden, bit for bit ({batch} samples, {n_spikes} spikes, "
              f"{expected.scores.size} scores)")
        return 0
    print(f"MISMATCH: first difference at {difference}")
    sample = difference.sample
    wave = cosim.record_waveform(model, inputs.spikes, sample,
                                 out.with_name(out.stem + f".sample{sample}.wave"),
                                 sim=args.sim, scheme=args.scheme, lanes=args.lanes)
    print(f"waveform of sample {sample}: {wave}")
    return EXIT_MISMATCH


def _regress_case(task: dict) -> dict:
    """One regression case, in a worker process."""
    import time
    from .netgen import NetParams, random_case
    from .sim import cosim
    params = NetParams(**task["params"])
    model, spikes = random_case(task["seed"], params, batch=task["batch"], steps=task["steps"],
                                shape_seed=task["shape_seed"])
    row = {"seed": task["seed"], "shape_seed": task["shape_seed"],
           "layers": "-".join([str(model.n_inputs)] + [
               f"{l.size}{'r' if l.recurrent else ''}" for l in model.layers]),
           "d_max": max(l.d_max for l in model.layers)}
    start = time.perf_counter()
    try:
        run = cosim.run_rtl(model, spikes, sim=task["sim"], scheme=task["scheme"],
                            lanes=task["lanes"], ready_prob=task["ready_prob"], seed=task["seed"])
        row["cycles"] = run.cycles
        difference = cosim.compare(model, spikes, run.result)
        row["difference"] = None if difference is None else str(difference)
        row["status"] = "ok" if row["difference"] is None else "MISMATCH"
    except Exception as exc:      # a crash is a failed case, reported, not a traceback
        row["status"], row["difference"] = "ERROR", f"{type(exc).__name__}: {exc}"
    row["seconds"] = time.perf_counter() - start
    return row


def cmd_regress(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from rich.console import Console
    from rich.table import Table

    from .cli import EXIT_MISMATCH
    from .netgen import NetParams
    from .sim import runner

    if args.seeds < 1 or args.shapes < 1 or args.jobs < 1:
        raise DelayhwError("--seeds, --shapes and -j must be at least 1")
    runner.check_simulator(args.sim)
    params = NetParams(max_inputs=args.max_size, max_size=args.max_size, max_layers=3,
                       d_max=(0, args.d_max)).as_dict()
    lanes_of = [1, 2, 4]
    tasks = [{"seed": s, "shape_seed": s % args.shapes, "params": params, "sim": args.sim,
              "scheme": args.scheme, "batch": args.batch, "steps": args.steps,
              "lanes": args.lanes or lanes_of[(s % args.shapes) % 3],
              "ready_prob": args.ready_prob}
             for s in range(args.start, args.start + args.seeds)]
    rows = []
    with _progress() as bar, ProcessPoolExecutor(max_workers=args.jobs) as pool:
        task_id = bar.add_task(f"regress {args.sim}/{args.scheme}", total=len(tasks))
        futures = {pool.submit(_regress_case, t): t for t in tasks}
        for future in as_completed(futures):
            rows.append(dict(future.result(), lanes=futures[future]["lanes"]))
            bar.advance(task_id)
    rows.sort(key=lambda r: r["seed"])
    table = Table(title=f"RTL vs golden: {args.sim}, scheme {args.scheme}, "
                        f"{args.batch} samples x {args.steps} steps per network")
    for col in ("seed", "shape", "layers", "d_max", "lanes", "cycles", "seconds", "result"):
        table.add_column(col, justify="right" if col not in ("layers", "result") else "left")
    for r in rows:
        table.add_row(str(r["seed"]), str(r["shape_seed"]), r["layers"], str(r["d_max"]),
                      str(r["lanes"]), str(r.get("cycles", "-")), f"{r['seconds']:.1f}",
                      r["status"] if r["status"] == "ok" else f"{r['status']}: {r['difference']}")
    console = Console()
    console.print(table)
    failed = [r for r in rows if r["status"] != "ok"]
    console.print(f"{len(rows) - len(failed)}/{len(rows)} networks bit-exact")
    for r in failed:
        console.print(f"reproduce seed {r['seed']}: delayhw regress --start {r['seed']} --seeds 1 "
                      f"--shapes {args.shapes} --sim {args.sim} --scheme {args.scheme} "
                      f"--lanes {r['lanes']} --batch {args.batch} --steps {args.steps} "
                      f"--max-size {args.max_size} --d-max {args.d_max} "
                      f"--ready-prob {args.ready_prob}", soft_wrap=True)
    return EXIT_MISMATCH if failed else 0


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be in (0, 1]")
    return value


def _core_options(p: argparse.ArgumentParser, lanes_default: int | None) -> None:
    p.add_argument("--scheme", choices=SCHEME_CHOICES, default="fifo",
                   help="delay scheme: fifo (clock-driven delay lines, cycles independent of "
                        "activity) or ring (event-driven rings of future currents, cycles "
                        "grow with spikes); default fifo")
    p.add_argument("--lanes", type=_lanes, default=lanes_default,
                   help="parallel neuron lanes, a power of 2 (default "
                        f"{lanes_default or '1, 2 or 4 by shape'})")


def _sim_options(p: argparse.ArgumentParser, lanes_default: int | None) -> None:
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                   help="simulator (default verilator)")
    _core_options(p, lanes_default)
    p.add_argument("--ready-prob", type=_probability, default=1.0,
                   help="probability that the output stream is ready in a cycle (default 1)")


def register(sub, add_force) -> None:
    p = sub.add_parser("generate", help="write the Verilog core and manifest for a model",
                       description="Generate the neuromorphic core for MODEL: Verilog with the "
                                   "network in its memories, plus manifest.json (ports, "
                                   "payload layouts, memory bits, cycles per step).")
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    _core_options(p, lanes_default=1)
    p.add_argument("--max-steps", type=int, default=MAX_STEPS, metavar="N",
                   help="longest sample (time steps) the readout scores must be exact for; "
                        f"sets their width to v_bits + ceil(log2(N)) (default {MAX_STEPS})")
    p.add_argument("--lint", action="store_true",
                   help="also lint with Verilator and compile with Icarus (if installed)")
    add_force(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("cosim", help="run a model in RTL (Verilator/Icarus) against golden",
                       description="Co-simulate MODEL on INPUT in RTL through cocotb, write "
                                   "the RTL's result file and compare it with the golden "
                                   "model bit for bit. Exit 1 on any difference (the first "
                                   "one is named and a waveform of that sample is written).")
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("input", metavar="INPUT", help="input file (.npz) with spikes [and labels]")
    p.add_argument("--out", required=True, metavar="RESULT.npz", help="RTL result file to write")
    _sim_options(p, lanes_default=1)
    add_force(p)
    p.set_defaults(func=cmd_cosim)

    p = sub.add_parser("regress", help="randomised RTL vs golden regression",
                       description="Run N random networks and inputs in RTL and compare each "
                                   "with the golden model. Case SEED draws its structure from "
                                   "SEED %% SHAPES (cases of one shape share a build) and its "
                                   "contents and inputs from SEED.")
    p.add_argument("--seeds", type=int, default=20, help="number of cases (default 20)")
    p.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--shapes", type=int, default=4, help="distinct structures (default 4)")
    _sim_options(p, lanes_default=None)
    p.add_argument("-j", "--jobs", type=int, default=2, help="parallel simulations (default 2)")
    p.add_argument("--batch", type=int, default=3, help="samples per network (default 3)")
    p.add_argument("--steps", type=int, default=16, help="steps per sample (default 16)")
    p.add_argument("--max-size", type=int, default=8, help="largest layer/input (default 8)")
    p.add_argument("--d-max", type=int, default=12, help="largest d_max (default 12)")
    p.set_defaults(func=cmd_regress)
