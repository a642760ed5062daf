"""What every ``delayhw`` command shares: exit codes, the argument parser's error rule,
argument types and options, error reporting, progress bars, and the report of a run
against the golden model.

Command modules (``hw``, ``train``, ``boards``, ``demo``) import this module and never the
package ``delayhw.cli`` that imports them (tests/test_cli_package.py checks it). Only light
modules are imported here at module level: heavy parts (rich, amaranth, torch, cocotb) are
imported inside the functions that need them, so ``delayhw --help`` starts fast.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Callable

from ..errors import DelayhwError
from ..publish import FULL_ERRNOS, show_path
from .argtypes import (BAUD, TIMEOUT, Checked, float_in, fraction, int_in, probability,  # noqa: F401
                       seed, sizes)

#: Exit codes (docs/design.md section 9): success, a check failed (RTL != golden, timing not met),
#: bad input (one line, no traceback), interrupted (SIGINT), terminated (SIGTERM).
EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 128 + signal.SIGTERM

SIM_CHOICES = ("verilator", "icarus")


# ----------------------------------------------------------------------------- parser


class UsageError(Exception):
    """A command-line argument error, already printed."""


class Parser(argparse.ArgumentParser):
    """argparse with the project's error rule: one line naming the argument and the rule
    (plus where to find help); :func:`delayhw.cli.main` turns it into exit code 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {show_path(message)} (see {self.prog} --help)",
              file=sys.stderr)
        raise UsageError()

    def _get_values(self, action, arg_strings):
        # "--option=--": argparse drops the "--" and stores [] unchecked (no type, no choices)
        if action.nargs is None and arg_strings == ["--"]:
            raise argparse.ArgumentError(action, "'--' is not a value")
        return super()._get_values(action, arg_strings)


def add_force(p: argparse.ArgumentParser) -> None:
    """``--force``: the only way a command replaces an existing output (delayhw.publish)."""
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def add_model_input(p: argparse.ArgumentParser, out_help: str) -> None:
    """MODEL, INPUT and ``--out RESULT.npz`` of the commands that run an input file."""
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("input", metavar="INPUT", help="input file (.npz) with spikes [and labels]")
    p.add_argument("--out", required=True, metavar="RESULT.npz", help=out_help)


def add_lanes(p: argparse.ArgumentParser, default: int | None) -> None:
    from ..gateware.shape import LANES
    p.add_argument("--lanes", type=int, choices=LANES, default=default, metavar="N",
                   help=f"parallel neuron lanes: {', '.join(map(str, LANES))} (default "
                        f"{default or '1, 2 or 4 by shape'})")


def add_core_options(p: argparse.ArgumentParser, lanes_default: int | None) -> None:
    """``--scheme`` and ``--lanes``: the core a command builds."""
    from ..gateware.shape import SCHEMES
    p.add_argument("--scheme", choices=SCHEMES, default="fifo",
                   help="delay scheme: fifo (clock-driven delay lines, cycles independent of "
                        "activity) or ring (event-driven rings of future currents, cycles "
                        "grow with spikes); default fifo")
    add_lanes(p, lanes_default)


#: a serial port's baud rate when neither ``--baud`` nor ``--board`` names one (the default
#: of the iCEBreaker and the ULX3S at their default clocks, docs/boards.md)
FALLBACK_BAUD = 3_000_000


def add_link_options(p: argparse.ArgumentParser) -> None:
    """``--board`` and ``--baud``: the baud rate of a serial port to a board
    (:func:`link_baud`)."""
    p.add_argument("--board", metavar="NAME", default=None,
                   help="the board behind a serial port, for its default baud rate at its "
                        "default clock (icebreaker, ulx3s-25f, ulx3s-85f, orangecrab-25f)")
    p.add_argument("--baud", type=BAUD, default=None,
                   help="baud rate of a serial port (default: --board's, else "
                        f"{FALLBACK_BAUD}; what `delayhw build` printed)")


def link_baud(args: argparse.Namespace) -> int:
    """``--baud``, else ``--board``'s default rate, else :data:`FALLBACK_BAUD`."""
    if args.baud is not None:
        return args.baud
    if args.board is not None:
        from ..boards.targets import get_board
        return get_board(args.board).baud
    return FALLBACK_BAUD


def add_sim_options(p: argparse.ArgumentParser, lanes_default: int | None) -> None:
    """``--sim``, the core options and ``--ready-prob``: an RTL simulation."""
    p.add_argument("--sim", choices=SIM_CHOICES, default=None,
                   help="simulator (default verilator; icarus with --netlist)")
    add_core_options(p, lanes_default)
    p.add_argument("--ready-prob", type=probability, default=1.0,
                   help="probability that the output stream is ready in a cycle (default 1)")


def add_netlist_options(p: argparse.ArgumentParser) -> None:
    """``--netlist BOARD`` and ``--timeout``: simulate the synthesised board top instead."""
    p.add_argument("--netlist", metavar="BOARD", default=None,
                   help="simulate the gate-level netlist of BOARD's board top, synthesised as "
                        "`delayhw build --board BOARD` does (yosys, cached), with the vendor "
                        "cell models, through its UART (docs/netlist.md)")
    p.add_argument("--timeout", type=TIMEOUT, default=600.0,
                   help="with --netlist: seconds to wait for a reply of the simulated board "
                        "(default 600)")


# ----------------------------------------------------------------------------- running


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so staged outputs are cleaned up on the way out."""


def _on_sigterm(signum, frame):
    raise Terminated()


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command with the project's error rule: a DelayhwError is one line on stderr
    and exit 2; SIGINT exits 130 and SIGTERM 143 after staged outputs are cleaned up."""
    import threading

    from .. import children           # before the handler: the cleanup below imports nothing
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main else None
    try:
        from ..limits import memory_budget
        memory_budget()               # a malformed DELAYHW_MEMORY_BUDGET: refused before any work
        return func(args)
    except DelayhwError as exc:
        print(f"delayhw: error: {show_path(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        if exc.errno not in FULL_ERRNOS:
            raise
        where = show_path(exc.filename) + ": " if exc.filename else ""
        print(f"delayhw: error: {where}{exc.strerror or 'no space left on device'}; the file "
              f"system is full, nothing was published", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("delayhw: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("delayhw: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        _stop_children(children)      # no simulator or FPGA tool outlives the command
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _stop_children(children) -> None:
    """``children.stop_all()``, finished even when a SIGTERM arrives meanwhile (the command is
    on its way out already; its outputs are published or discarded)."""
    try:
        children.stop_all()
    except Terminated:
        children.stop_all()


def open_result_job(args: argparse.Namespace):
    """For the commands that run MODEL on INPUT into ``--out RESULT.npz`` (golden, cosim,
    run): check and stage the result file first (before any work; delayhw.publish rules),
    then load MODEL and INPUT. Returns ``(outputs, staged_result_path, model, inputs)``;
    the caller writes the staged path and calls ``outputs.publish()``."""
    from ..formats import load_input, load_model
    from ..publish import Outputs

    outputs = Outputs(force=args.force, inputs=[args.model, args.input])
    staged = outputs.file(args.out)
    try:
        model = load_model(args.model)
        inputs = load_input(args.input, model)
        outputs.reserve(result_bytes(model, *inputs.spikes.shape[:2]), "the result file")
        return outputs, staged, model, inputs
    except BaseException:
        outputs.discard()
        raise


def result_bytes(model, batch: int, steps: int) -> int:
    """An upper estimate of a result file's size (uncompressed): every LIF layer's spikes
    (B, T, size) as bytes and the scores and predictions as int64."""
    lif = sum(model.layers[k].size for k in model.lif_layers)
    return batch * steps * lif + batch * (model.n_outputs + 1) * 8 + (64 << 10)


def publish_result(outputs, staged, result, out, what: str) -> None:
    """Write ``result`` to its staged path, publish the job's outputs and say where."""
    result.save(staged)
    outputs.publish()
    print(f"{what} result written to {show_path(out)}")


def progress():
    """A rich progress bar on stderr (description, bar, done/total, elapsed)."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=False)


def report_against_golden(model, inputs, actual, who: str):
    """Compare ``actual`` (the Result of running ``inputs`` on ``model`` in RTL or on a board)
    with the golden model bit for bit and print the verdict: accuracies of both when the
    input has labels, then ``agreement: WHO == golden`` or ``MISMATCH: first difference at
    ...``. Returns the first difference (a gateware.protocol.Difference) or None."""
    from .. import golden
    from ..gateware.protocol import first_difference

    expected = golden.run(model, inputs.spikes)
    batch = inputs.spikes.shape[0]
    if inputs.labels is not None:
        print(f"accuracy: {who} {100 * actual.accuracy(inputs.labels):.2f}%, golden "
              f"{100 * expected.accuracy(inputs.labels):.2f}% ({batch} samples)")
    difference = first_difference(expected, actual, ("golden", who))
    if difference is None and not actual.spikes and expected.spikes:
        print(f"agreement: {who} == golden, bit for bit in scores and predictions ({batch} "
              f"samples, {expected.scores.size} scores; spikes not sent)")
    elif difference is None:
        n_spikes = sum(int(s.sum()) for s in expected.spikes)
        print(f"agreement: {who} == golden, bit for bit ({batch} samples, {n_spikes} spikes, "
              f"{expected.scores.size} scores)")
    else:
        print(f"MISMATCH: first difference at {difference}")
    return difference


def netlist_samples(inputs, count: int | None):
    """The first ``count`` samples of ``inputs`` (all when None): what a netlist check runs."""
    from ..formats import Inputs
    if count is None or count >= inputs.spikes.shape[0]:
        return inputs
    return Inputs(inputs.spikes[:count],
                  None if inputs.labels is None else inputs.labels[:count])


def netlist_check(design, inputs, *, sim: str, timeout: float,
                  wave_path: Callable[[int], object], force: bool, rtl: bool = False) -> dict:
    """Synthesise ``design`` (a :class:`delayhw.sim.netlist.Design`; cached by content), run
    ``inputs`` on its netlist in ``sim`` through the UART with the host runtime, and print the
    verdict against the golden model bit for bit (with ``rtl``: also against the RTL
    co-simulation of the same samples). On a difference the first differing sample is re-run
    with a trace, published at ``wave_path(sample)`` plus the trace's suffix. Returns a summary
    (``equal``, ``first_difference``, cycles, timings, the netlist's folder) with the result
    under ``"result"``."""
    import time

    from rich.console import Console

    from ..gateware.protocol import first_difference
    from ..sim import netlist

    from ..boards.fit import fit_check
    fit = fit_check(design.shape, design.board)
    if not fit.fits:
        raise DelayhwError(f"--netlist: the model does not fit the {design.board.name} "
                           f"({design.board.fabric.device}), nothing to synthesise:\n"
                           f"{fit.table()}")
    board = design.board.name
    batch, steps = inputs.spikes.shape[:2]
    console = Console(stderr=True)
    start = time.perf_counter()
    with console.status("netlist") as status:
        synthesised = netlist.synthesise(
            design, lambda stage: status.update(f"{stage} ({time.perf_counter() - start:.0f} s)"))
        status.update(f"compiling the netlist for {sim} (once per netlist)")
        build_ = netlist.build(synthesised, sim)
    cells = synthesised.cells()
    print(f"netlist of the {board} board top ({design.shape.scheme}, {design.shape.lanes} "
          f"lane(s), UART divisor {design.divisor}): "
          + ("found in the cache" if synthesised.cached
             else f"synthesised in {synthesised.seconds:.0f} s")
          + f"; {', '.join(f'{n} {k}' for k, n in sorted(cells.items()) if not k.startswith('$'))}")
    with progress() as bar:
        task = bar.add_task(f"netlist {board} in {sim}: {batch} samples x {steps} steps",
                            total=batch)
        run = netlist.run(synthesised, inputs.spikes, sim=sim, build_=build_, timeout=timeout,
                          on_sample=lambda n: bar.update(task, completed=n))
    print(f"netlist: {run.cycles:,} cycles in {run.sim_seconds:.1f} s "
          f"({run.cycles_per_second:,.0f} cycles/s; {run.cycles_per_cpu_second:,.0f} per "
          f"second of the simulator's CPU time); configuration "
          + ("sent through the UART (SPRAM is not in the bitstream)" if run.loaded
             else "from the bitstream's memory contents (not sent)"))
    difference = report_against_golden(design.model, inputs, run.result, "netlist")
    summary = {"board": board, "sim": sim, "samples": batch, "steps": steps,
               "netlist": str(synthesised.directory), "cycles": run.cycles,
               "sim_seconds": round(run.sim_seconds, 2),
               "cycles_per_cpu_second": (round(run.cycles_per_cpu_second)
                                         if run.cpu_seconds > 0 else None),
               "cpu_seconds": round(run.cpu_seconds, 2),
               "configuration_loaded": run.loaded, "equal": difference is None,
               "first_difference": None if difference is None else str(difference),
               "result": run.result}
    if rtl:
        from ..sim import cosim
        rtl_run = cosim.run_rtl(design.model, inputs.spikes, sim=sim,
                                scheme=design.shape.scheme, lanes=design.shape.lanes,
                                memory=design.shape.memory)
        versus = first_difference(rtl_run.result, run.result, ("RTL", "netlist"))
        summary["rtl_equal"] = versus is None
        print("agreement: netlist == RTL, bit for bit" if versus is None else
              f"MISMATCH: netlist vs RTL, first difference at {versus}")
    if difference is not None:
        try:
            wave = netlist.record_waveform(synthesised, inputs.spikes, difference.sample,
                                           wave_path(difference.sample), sim=sim,
                                           timeout=timeout, force=force)
            summary["waveform"] = str(wave)
            print(f"waveform of sample {difference.sample} on the netlist: {show_path(wave)}")
        except DelayhwError as exc:          # the mismatch stays the verdict (exit 1)
            print(f"waveform of sample {difference.sample} not written: {show_path(str(exc))}")
    return summary
