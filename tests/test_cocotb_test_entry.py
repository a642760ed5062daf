"""The core's cocotb testbench run through cocotb-test (`cocotb_test.simulator.run`), as a
cocotb-test suite would: bit-exact against the golden model in both simulators."""

import hashlib

import numpy as np
import pytest

from delayhw import golden, netgen
from delayhw.gateware.shape import CoreShape
from delayhw.sim import cosim, runner
from delayhw.sim.cocotbtest import CocotbTestBench
from delayhw.sim.tools import icarus_available

cocotb_test = pytest.importorskip("cocotb_test.simulator",
                                  reason="the 'scale' extra (cocotb-test) is not installed")
pytestmark = pytest.mark.cocotb

SIMS = [
    "verilator",
    pytest.param("icarus", marks=pytest.mark.skipif(
        not icarus_available(), reason="iverilog is not installed (.ci/run installs it)")),
]


def sim_build_for(sim, model, lanes):
    """cocotb-test builds in place: one persistent sim_build per simulator, core and Python
    environment (a build's makefile names its environment's cocotb files by path), so a
    second run recompiles nothing; locked, as two test sessions may share the cache."""
    verilog = runner._core_verilog(CoreShape.from_model(model, lanes, "fifo"))
    digest = hashlib.sha256("\0".join([verilog, runner._versions(sim)]).encode()).hexdigest()[:16]
    return runner.cache_root() / "cocotb-test" / f"{sim}-{digest}"


@pytest.mark.parametrize("sim", SIMS)
def test_cocotb_test_entry_is_bit_exact(sim):
    model = netgen.example_model()
    spikes = netgen.random_spikes(np.random.default_rng(11), 3, 20, model.n_inputs, 0.25)
    sim_build = sim_build_for(sim, model, lanes=2)
    with runner._locked(sim_build.with_suffix(".lock")):
        bench = CocotbTestBench(model, spikes, sim_build, lanes=2, ready_prob=0.5, seed=3)
        cocotb_test.run(**bench.run_args(sim))
        rtl = bench.result()
    assert cosim.compare(model, spikes, rtl) is None
    expected = golden.run(model, spikes)
    assert sum(int(s.sum()) for s in expected.spikes) > 20          # an active network
    assert (rtl.scores == expected.scores).all()


def test_cocotb_test_entry_catches_a_corrupted_weight(monkeypatch):
    """The same entry reports a difference when the RTL holds another network."""
    if not icarus_available():
        pytest.skip("iverilog is not installed")
    from test_cosim import corrupt_one_readout_weight
    model = netgen.example_model()
    spikes = netgen.random_spikes(np.random.default_rng(2), 2, 25, model.n_inputs, 0.2)
    corrupted, unit = corrupt_one_readout_weight(model, spikes)
    real = cosim._config_blocks
    monkeypatch.setattr(cosim, "_config_blocks", lambda m: real(corrupted))
    sim_build = sim_build_for("icarus", model, lanes=1)
    with runner._locked(sim_build.with_suffix(".lock")):
        bench = CocotbTestBench(model, spikes, sim_build)
        cocotb_test.run(**bench.run_args("icarus"))
        difference = cosim.compare(model, spikes, bench.result())
    assert difference is not None and (difference.sample, difference.unit) == (0, unit)
