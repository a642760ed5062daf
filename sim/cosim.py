"""Co-simulation: run a model on inputs in RTL (Verilator or Icarus) and compare with the
golden model, every spike of every lif layer at every step and every score.

The model travels in the stimulus as configuration writes, so every model of one shape
shares one simulator build (:mod:`delayhw.sim.runner`).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from delayhw import children, golden
from delayhw.errors import DelayhwError
from delayhw.formats import Result, check_spikes
from delayhw.gateware import protocol, wire
from delayhw.gateware.shape import CoreShape
from delayhw.gateware.wire import OutKind
from delayhw.publish import copy_file
from delayhw.spec import Model

from . import runner

TAG_CONFIG, TAG_INPUT = 0, 1


@dataclass
class CosimRun:
    """One RTL run: its result and what it cost."""

    result: Result
    sim: str
    cycles: int           #: simulated clock cycles after reset
    sim_seconds: float    #: wall time the simulator spent running the cycles
    total_seconds: float  #: including Verilog generation, build (if not cached) and start-up
    build_dir: Path

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.sim_seconds if self.sim_seconds > 0 else float("nan")


def write_stimulus(path: Path, model: Model, spikes: np.ndarray) -> int:
    """The stimulus file of ``cosim_top.v``: the model's configuration writes, then the input
    events of every sample. Returns the number of words."""
    lines = [f"{TAG_CONFIG} {w:x}" for w in protocol.config_stream(model)]
    lines += [f"{TAG_INPUT} {w:x}" for w in protocol.batch_words(spikes)]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def cycle_bound(shape: CoreShape, words: int, batch: int, steps: int, ready_prob: float) -> int:
    """A generous upper bound of the cycles a run may take (the testbench's timeout)."""
    # (every spike may also wait one cycle for the output stream)
    per_sample = steps * (shape.cycles_per_step() + sum(l.size for l in shape.layers)) + \
        shape.clear_cycles() + 4 * shape.layers[-1].size + 64
    bound = 2 * (words + batch * per_sample) + 10_000
    return int(bound / min(1.0, max(ready_prob, 1e-3)))


def _count_samples(path: Path, state: dict) -> int:
    """SAMPLE markers in the output file so far (read incrementally)."""
    try:
        with open(path) as f:
            f.seek(state.get("offset", 0))
            chunk = f.read()
    except FileNotFoundError:
        return 0
    complete = chunk[:chunk.rfind("\n") + 1]
    state["offset"] = state.get("offset", 0) + len(complete)
    kind_mask = (1 << wire.KIND_BITS) - 1        # the kind is the low bits of an output word
    for line in complete.split():
        if int(line[-1], 16) & kind_mask == OutKind.SAMPLE:
            state["samples"] = state.get("samples", 0) + 1
    return state.get("samples", 0)


def run_rtl(model: Model, spikes: np.ndarray, *, sim: str = "verilator", scheme: str = "fifo",
            lanes: int = 1, ready_prob: float = 1.0, seed: int = 1, waves: bool = False,
            workdir: Path | None = None,
            on_progress: Callable[[int], None] | None = None,
            memory: str = "bram") -> CosimRun:
    """Run ``model`` on ``spikes`` ``(B, T, n_inputs)`` in RTL and decode the outputs.
    ``on_progress(samples_done)`` is called as samples finish. ``memory="spram"`` simulates
    the core with its largest synapse memories in iCE40 SPRAM (Yosys's cell model)."""
    t0 = time.perf_counter()
    spikes = check_spikes("cosim", spikes, model.n_inputs, nonempty=False)
    batch, steps, _ = spikes.shape
    shape = CoreShape.from_model(model, lanes, scheme, memory=memory)
    protocol.check_steps(shape, steps)
    build = runner.build(shape, sim, waves)
    own_dir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="delayhw-cosim-")) if own_dir else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    thread = threading.Thread()          # not started: nothing to stop yet
    try:
        stim, out, stats = workdir / "stimulus.txt", workdir / "outputs.txt", workdir / "stats.json"
        words = write_stimulus(stim, model, spikes)
        bound = cycle_bound(shape, words, batch, steps, ready_prob)
        outcome: dict = {}

        def simulate():
            try:
                outcome["stats"] = runner.run(build, stim, out, stats, workdir, max_cycles=bound,
                                              ready_prob=ready_prob, seed=seed, waves=waves)
            except BaseException as exc:       # re-raised in the caller's thread
                outcome["error"] = exc

        thread = threading.Thread(target=simulate, daemon=True)
        thread.start()
        progress: dict = {}
        while thread.is_alive():
            thread.join(0.2)
            if on_progress is not None:
                on_progress(_count_samples(out, progress))
        if "error" in outcome:
            raise outcome["error"]
        words_out = [int(line, 16) for line in out.read_text().split()]
        result = protocol.decode_outputs(words_out, shape, batch, steps)
        if on_progress is not None:
            on_progress(batch)
        return CosimRun(result, sim, outcome["stats"]["cycles"], outcome["stats"]["wall_s"],
                        time.perf_counter() - t0, build.directory)
    finally:
        if thread.is_alive():            # left by an exception (SIGINT/SIGTERM): stop the
            children.stop_all()          # simulator before its folder is removed
            thread.join(10)
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)


def compare(model: Model, spikes: np.ndarray, rtl: Result) -> protocol.Difference | None:
    """None if the RTL result equals the golden model's bit for bit, else where it first
    differs (sample, step, layer, unit)."""
    return protocol.first_difference(golden.run(model, spikes), rtl)


def record_waveform(model: Model, spikes: np.ndarray, sample: int, path: Path, *,
                    sim: str = "verilator", scheme: str = "fifo", lanes: int = 1,
                    force: bool = False) -> Path:
    """Re-run one sample with waveform tracing; save the trace at ``path`` plus the suffix of
    the simulator's format (``.vcd`` from Verilator, ``.fst`` from Icarus), published by
    :func:`delayhw.publish.copy_file` (an existing file is replaced only with ``force``)."""
    with tempfile.TemporaryDirectory(prefix="delayhw-waves-") as tmp:
        run_rtl(model, spikes[sample:sample + 1], sim=sim, scheme=scheme, lanes=lanes,
                waves=True, workdir=Path(tmp))
        traces = sorted(Path(tmp).rglob("*.vcd")) + sorted(Path(tmp).rglob("*.fst"))
        if not traces:
            raise DelayhwError(f"{sim}: the waveform run produced no trace file")
        return copy_file(traces[0], Path(f"{path}{traces[0].suffix}"), force=force,
                         flag="waveform")
