"""Model and hardware commands: ``golden`` (the bit-exact golden model on an input file),
``generate`` (Verilog + manifest), ``cosim`` and ``regress``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import DelayhwError
from ..gateware.ip import DEFAULT_TOP, INTERFACES, TLAST
from ..gateware.shape import MAX_STEPS, MAX_STEPS_LIMIT
from ..publish import show_path
from ..sim.regress import EXECUTORS
from ..spec import LIMITS
from .common import (BAUD, EXIT_MISMATCH, EXIT_OK, TIMEOUT, add_core_options, add_force,
                     add_model_input, add_netlist_options, add_sim_options, int_in,
                     netlist_check, netlist_samples, open_result_job, seed, progress,
                     publish_result, report_against_golden)


def cmd_golden(args: argparse.Namespace) -> int:
    from .. import golden

    outputs, staged, model, inputs = open_result_job(args)
    with outputs:
        result = golden.run(model, inputs.spikes)
        result.save(staged)
    batch, steps = inputs.spikes.shape[:2]
    print(f"golden: {batch} samples x {steps} steps -> {show_path(args.out)}")
    if inputs.labels is not None:
        print(f"accuracy: {100 * result.accuracy(inputs.labels):.2f}% "
              f"({int((result.predictions == inputs.labels).sum())}/{batch})")
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..formats import load_model
    from ..gateware.ip import Interface
    from ..gateware.shape import CoreShape
    from ..gateware.verilog import generate
    from ..publish import Outputs

    console = Console(stderr=True)
    interface = Interface(args.interface, args.tlast, args.top)   # bad options: one line
    outputs = Outputs(force=args.force, inputs=[args.model])
    staged = outputs.directory(args.out)
    model = load_model(args.model)
    # rejects what cannot be built before anything is written
    shape = CoreShape.from_model(model, args.lanes, args.scheme, args.max_steps)
    with console.status(f"elaborating and converting {args.model} to Verilog"):
        info = generate(model, staged, lanes=args.lanes, scheme=args.scheme,
                        max_steps=args.max_steps, model_file=args.model, interface=interface)
    out = Path(args.out)
    bits = info["memory_bits"]
    print(f"wrote {show_path(out / info['verilog'])}, {show_path(out / info['rtlil'])}, "
          f"{show_path(out / info['instance_template'])} and "
          f"{show_path(out / 'manifest.json')}")
    if interface.kind == "axis":
        print(f"module {interface.top}: AXI4-Stream ports (aclk, aresetn active low; "
              f"m_axis_outputs_tlast at the end of each {interface.tlast}; docs/ip.md)")
    print(f"scheme {args.scheme}, {args.lanes} lane(s); memory {bits['total']} bits "
          f"({', '.join(f'{k} {v}' for k, v in bits.items() if k != 'total' and v)})")
    print(f"cycles per step: {info['cycles_per_step']['value']} "
          f"({info['cycles_per_step']['formula']})")
    print(f"scores: {shape.score_bits} bits, exact for samples of up to {shape.max_steps} "
          f"steps (longer samples are flagged in their SAMPLE event)")
    if args.lint:
        from ..sim.tools import compile_icarus, icarus_available, lint_verilator
        verilog_file = staged / info["verilog"]
        lint = lint_verilator(verilog_file)
        print(f"verilator --lint-only: {'clean' if lint.returncode == 0 else 'FAILED'}")
        if lint.returncode:
            print(lint.stderr)
            outputs.publish()
            return EXIT_MISMATCH
        if icarus_available():
            compiled = verilog_file.with_suffix(".vvp")
            comp = compile_icarus(verilog_file, compiled)
            compiled.unlink(missing_ok=True)
            print(f"iverilog: {'compiles' if comp.returncode == 0 else 'FAILED'}")
            if comp.returncode:
                print(comp.stderr)
                outputs.publish()
                return EXIT_MISMATCH
        else:
            print("iverilog: not installed, skipped")
    outputs.publish()
    return EXIT_OK


def cmd_cosim(args: argparse.Namespace) -> int:
    from ..gateware.shape import CoreShape
    from ..sim import cosim, runner

    if args.netlist is None:
        for flag, value in (("--baud", args.baud), ("--samples", args.samples)):
            if value is not None:
                raise DelayhwError(f"{flag}: only with --netlist BOARD")
    elif args.ready_prob != 1.0:
        raise DelayhwError("--ready-prob: not with --netlist (the host runtime reads every "
                           "byte the board sends)")
    args.sim = args.sim or ("icarus" if args.netlist else "verilator")
    outputs, staged, model, inputs = open_result_job(args)
    out = Path(args.out)
    CoreShape.from_model(model, args.lanes, args.scheme)      # rejects what cannot be built
    runner.check_simulator(args.sim)
    if args.netlist is not None:
        return _cosim_netlist(args, outputs, staged, model, inputs)
    batch, steps = inputs.spikes.shape[:2]
    with progress() as bar:
        task = bar.add_task(f"{args.sim}: {batch} samples x {steps} steps", total=batch)
        run = cosim.run_rtl(model, inputs.spikes, sim=args.sim, scheme=args.scheme,
                            lanes=args.lanes, ready_prob=args.ready_prob,
                            on_progress=lambda n: bar.update(task, completed=n))
    publish_result(outputs, staged, run.result, args.out, "RTL")
    print(f"simulated {run.cycles} cycles in {run.sim_seconds:.2f} s "
          f"({run.cycles_per_second:,.0f} cycles/s; {run.total_seconds:.1f} s with build and "
          f"start-up)")
    difference = report_against_golden(model, inputs, run.result, "RTL")
    if difference is None:
        return EXIT_OK
    sample = difference.sample
    try:
        wave = cosim.record_waveform(model, inputs.spikes, sample,
                                     out.with_name(out.stem + f".sample{sample}.wave"),
                                     sim=args.sim, scheme=args.scheme, lanes=args.lanes,
                                     force=args.force)
        print(f"waveform of sample {sample}: {show_path(wave)}")
    except DelayhwError as exc:          # the mismatch stays the verdict (exit 1)
        print(f"waveform of sample {sample} not written: {show_path(str(exc))}")
    return EXIT_MISMATCH


def _cosim_netlist(args, outputs, staged, model, inputs) -> int:
    """``cosim --netlist BOARD``: the board top synthesised as ``delayhw build`` does, run on
    the first ``--samples`` samples against the golden model and the RTL."""
    from ..boards.targets import get_board
    from ..sim.netlist import Design

    design = Design.of(model, get_board(args.netlist), scheme=args.scheme, lanes=args.lanes,
                       baud=args.baud)
    inputs = netlist_samples(inputs, args.samples)
    out = Path(args.out)
    summary = netlist_check(design, inputs, sim=args.sim, timeout=args.timeout,
                            wave_path=lambda k: out.with_name(f"{out.stem}.sample{k}.netlist"),
                            force=args.force, rtl=True)
    publish_result(outputs, staged, summary["result"], args.out, "netlist")
    return EXIT_OK if summary["equal"] and summary.get("rtl_equal", True) else EXIT_MISMATCH


def cmd_regress(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console

    from ..sim import regress, runner

    args.sim = args.sim or ("icarus" if args.netlist else "verilator")
    if args.netlist is None and args.baud is not None:
        raise DelayhwError("--baud: only with --netlist BOARD")
    if args.netlist is not None:
        from ..boards.targets import get_board
        get_board(args.netlist)                      # an unknown board: refused now
        if args.ready_prob != 1.0:
            raise DelayhwError("--ready-prob: not with --netlist (the host runtime reads "
                               "every byte the board sends)")
    runner.check_simulator(args.sim)
    settings = regress.Settings(sim=args.sim, netlist=args.netlist, baud=args.baud,
                                timeout=args.timeout, scheme=args.scheme, shapes=args.shapes,
                                lanes=args.lanes, batch=args.batch, steps=args.steps,
                                max_size=args.max_size, d_max=args.d_max,
                                ready_prob=args.ready_prob)
    tasks = settings.tasks(args.start, args.seeds)
    jobs = min(args.jobs, args.seeds, os.cpu_count() or 1)
    where = args.scheduler or (f"{jobs} local processes" if args.executor == "local"
                               else f"a LocalCluster of {jobs} workers")
    start = time.perf_counter()
    with progress() as bar:
        task_id = bar.add_task(f"regress {args.sim}/{args.scheme} on {where}", total=len(tasks))
        rows = regress.run_cases(tasks, executor=args.executor, jobs=jobs,
                                 scheduler=args.scheduler,
                                 on_row=lambda row: bar.advance(task_id))
    wall = time.perf_counter() - start
    Console(stderr=True).print(f"{len(rows)} networks in {wall:.1f} s "
                               f"({60 * len(rows) / wall:.1f} networks/min) on {where}")
    console = Console()
    for item in regress.summary(rows, settings):
        console.print(item, soft_wrap=isinstance(item, str))
    return EXIT_MISMATCH if regress.failed(rows) else EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("golden", help="run the bit-exact golden model on an input file",
                       description="Run the golden model (docs/design.md section 3) of MODEL on "
                                   "INPUT and write a result file.")
    add_model_input(p, out_help="result file to write")
    add_force(p)
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser("generate", help="write the Verilog core and manifest for a model",
                       description="Generate the neuromorphic core for MODEL: Verilog with the "
                                   "network in its memories (and the same design as RTLIL), "
                                   "an instantiation template, plus manifest.json (ports, "
                                   "payload layouts, memory bits, cycles per step, timing "
                                   "notes).")
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output directory")
    add_core_options(p, lanes_default=1)
    p.add_argument("--max-steps", type=int_in(1, MAX_STEPS_LIMIT), default=MAX_STEPS, metavar="N",
                   help="longest sample (time steps) the readout scores must be exact for; "
                        f"sets their width to v_bits + ceil(log2(N)) (default {MAX_STEPS})")
    p.add_argument("--interface", choices=INTERFACES, default="native",
                   help="port names of the module: native (Amaranth's: clk, rst, "
                        "inputs__payload/valid/ready, ...) or axis (AXI4-Stream: aclk, aresetn "
                        "active low, s_axis_inputs_*, s_axis_config_*, m_axis_outputs_* with "
                        "tlast; docs/ip.md); default native")
    p.add_argument("--tlast", choices=TLAST, default=None,
                   help="with --interface axis: m_axis_outputs_tlast marks the end of each "
                        "sample (its SAMPLE event; default) or of each step (every STEP and "
                        "SAMPLE event)")
    p.add_argument("--top", default=DEFAULT_TOP, metavar="NAME",
                   help="name of the Verilog module (and prefix of its submodules), so that "
                        f"several cores fit one design (default {DEFAULT_TOP})")
    p.add_argument("--lint", action="store_true",
                   help="also lint with Verilator and compile with Icarus (if installed)")
    add_force(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("cosim", help="run a model in RTL (Verilator/Icarus) against golden",
                       description="Co-simulate MODEL on INPUT in RTL through cocotb, write "
                                   "the RTL's result file and compare it with the golden "
                                   "model bit for bit. Exit 1 on any difference (the first "
                                   "one is named and a waveform of that sample is written).")
    add_model_input(p, out_help="RTL result file to write (with --netlist: the netlist's)")
    add_sim_options(p, lanes_default=1)
    add_netlist_options(p)
    p.add_argument("--samples", type=int_in(1, 1_000_000), default=None, metavar="N",
                   help="with --netlist: only the first N samples of INPUT (gate-level "
                        "simulation is slow; docs/netlist.md; default all)")
    p.add_argument("--baud", type=BAUD, default=None,
                   help="with --netlist: the UART baud rate of the build whose netlist is "
                        "simulated (default the board's; sets the UART divisor)")
    add_force(p)
    p.set_defaults(func=cmd_cosim)

    p = sub.add_parser("regress", help="randomised RTL vs golden regression",
                       description="Run N random networks and inputs in RTL and compare each "
                                   "with the golden model. Case SEED draws its structure from "
                                   "SEED % SHAPES (cases of one shape share a build) and its "
                                   "contents and inputs from SEED.")
    p.add_argument("--seeds", type=int_in(1, 100_000), default=20, help="number of cases (default 20)")
    p.add_argument("--start", type=seed, default=0, help="first seed (default 0)")
    p.add_argument("--shapes", type=int_in(1, 1_000), default=4, help="distinct structures (default 4)")
    add_sim_options(p, lanes_default=None)
    p.add_argument("-j", "--jobs", type=int_in(1, 1_024), default=2,
                   help="parallel simulations: local processes, or the workers of the Dask "
                        "LocalCluster started when no --scheduler is given (default 2; at most "
                        "the number of CPUs is used)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where cases run: local processes, or a Dask distributed cluster "
                        "(pip install 'delayhw[scale]'); the summary is the same (default local)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="with --executor dask: the scheduler to use, e.g. tcp://host:8786 "
                        "(default: start a LocalCluster of -j workers)")
    p.add_argument("--batch", type=int_in(1, 1_000), default=3, help="samples per network (default 3)")
    p.add_argument("--steps", type=int_in(1, 10_000), default=16, help="steps per sample (default 16)")
    p.add_argument("--max-size", type=int_in(1, 1_024), default=8,
                   help="largest layer/input (default 8)")
    p.add_argument("--d-max", type=int_in(*LIMITS["d_max"]), default=12,
                   help="largest d_max (0..255, default 12)")
    add_netlist_options(p)
    p.add_argument("--baud", type=BAUD, default=None,
                   help="with --netlist: the UART baud rate of the builds (default the board's)")
    p.set_defaults(func=cmd_regress)
