"""cocotb co-simulation of the generated RTL in Verilator and Icarus, against the golden
model: every spike of every lif layer at every step, and the scores."""

from dataclasses import replace

import numpy as np
import pytest

from delayhw import DelayhwError, Inputs, golden, load_result, netgen, save_model
from delayhw.cli import main
from delayhw.gateware import protocol
from delayhw.sim import cosim
from delayhw.sim.tools import icarus_available

pytestmark = pytest.mark.cocotb

SIMS = [
    "verilator",
    pytest.param("icarus", marks=pytest.mark.skipif(
        not icarus_available(), reason="iverilog is not installed (.ci/run installs it)")),
]

# Three structures, several contents each: cases of one structure share a simulator build.
PARAMS = netgen.NetParams(max_inputs=7, max_size=7, max_layers=3, d_max=(0, 9))
CASES = [(seed, shape, lanes) for shape, lanes in ((1, 1), (2, 2), (3, 4)) for seed in (shape, shape + 10)]


def assert_bit_exact(model, spikes, rtl):
    difference = cosim.compare(model, spikes, rtl)
    assert difference is None, str(difference)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("seed, shape, lanes", CASES)
def test_random_networks_are_bit_exact(sim, seed, shape, lanes):
    model, spikes = netgen.random_case(seed, PARAMS, batch=3, steps=12, shape_seed=shape)
    run = cosim.run_rtl(model, spikes, sim=sim, lanes=lanes)
    assert_bit_exact(model, spikes, run.result)
    assert run.cycles > 0


RING_CASES = [(seed, shape, lanes) for shape, lanes in ((4, 1), (5, 4)) for seed in (shape, shape + 10)]


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("seed, shape, lanes", RING_CASES)
def test_ring_random_networks_are_bit_exact(sim, seed, shape, lanes):
    model, spikes = netgen.random_case(seed, PARAMS, batch=3, steps=12, shape_seed=shape)
    run = cosim.run_rtl(model, spikes, sim=sim, scheme="ring", lanes=lanes, ready_prob=0.5,
                        seed=seed)
    assert_bit_exact(model, spikes, run.result)


@pytest.mark.parametrize("sim", SIMS)
def test_ring_trained_model_is_bit_exact(sim, trained):
    model, inputs = trained
    spikes = inputs.spikes[:16]
    run = cosim.run_rtl(model, spikes, sim=sim, scheme="ring", lanes=2)
    assert_bit_exact(model, spikes, run.result)


@pytest.mark.parametrize("sim", SIMS)
def test_widest_widths_and_longest_delays(sim):
    params = netgen.NetParams(max_inputs=4, max_size=4, max_layers=2, w_bits=(16, 16),
                              v_bits=(32, 32), f_bits=(16, 16), d_max=(255, 255), p_recurrent=1.0)
    model, _ = netgen.random_case(77, params)
    spikes = netgen.random_spikes(np.random.default_rng(7), 2, 270, model.n_inputs, 0.3)
    run = cosim.run_rtl(model, spikes, sim=sim, lanes=2)
    assert_bit_exact(model, spikes, run.result)


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("seed", range(60))
def test_random_networks_long_sweep(sim, seed):
    params = netgen.NetParams(max_inputs=12, max_size=12, max_layers=4, d_max=(0, 30))
    model, spikes = netgen.random_case(10_000 + seed, params, batch=4, steps=40, shape_seed=seed % 6)
    run = cosim.run_rtl(model, spikes, sim=sim, lanes=[1, 2, 4][seed % 3], ready_prob=0.5,
                        seed=seed)
    assert_bit_exact(model, spikes, run.result)


@pytest.mark.parametrize("sim", SIMS)
def test_example_model_with_realistic_sparsity_and_delays(sim):
    model = netgen.example_model()
    spikes = netgen.random_spikes(np.random.default_rng(1), 4, 30, model.n_inputs, 0.15)
    run = cosim.run_rtl(model, spikes, sim=sim)
    assert_bit_exact(model, spikes, run.result)
    assert sum(int(s.sum()) for s in run.result.spikes) > 20     # the network is active


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The trainer's export: the synthetic delay task, trained and quantised (~10 s)."""
    from delayhw import load_input, load_model
    from delayhw.train.api import train_task
    report = train_task("synthetic", tmp_path_factory.mktemp("trained") / "model.npz", quiet=True)
    return load_model(report.model_path), load_input(report.test_input_path)


@pytest.mark.parametrize("sim", SIMS)
def test_trained_model_is_bit_exact(sim, trained):
    model, inputs = trained
    spikes, labels = inputs.spikes[:24], inputs.labels[:24]
    run = cosim.run_rtl(model, spikes, sim=sim)
    assert_bit_exact(model, spikes, run.result)
    assert run.result.accuracy(labels) > 0.75          # a trained network, not noise
    assert sum(l.d.max() > 0 for l in model.layers) >= 1


@pytest.mark.parametrize("sim", SIMS)
def test_output_back_pressure_in_rtl_changes_nothing(sim):
    model = netgen.example_model()       # busy enough that a slow consumer fills the queue
    spikes = netgen.random_spikes(np.random.default_rng(5), 2, 20, model.n_inputs, 0.5)
    free = cosim.run_rtl(model, spikes, sim=sim)
    pressed = cosim.run_rtl(model, spikes, sim=sim, ready_prob=0.02, seed=5)
    assert_bit_exact(model, spikes, pressed.result)
    assert pressed.cycles > free.cycles


def corrupt_one_readout_weight(model, spikes):
    """The model with one readout weight changed where it must change a score: the weight
    from a hidden unit that spikes, +1 (no clamping with the example's wide membranes)."""
    hidden = golden.run(model, spikes).spikes[-1]
    unit = int(np.argmax(hidden[0].sum(axis=0)))
    assert hidden[0, :, unit].sum() > 0
    out = model.layers[-1]
    w = out.w.copy()
    j = 0
    w[j, unit] = w[j, unit] + 1 if w[j, unit] < 2 ** (out.w_bits - 1) - 1 else w[j, unit] - 1
    return model.with_layers([*model.layers[:-1], replace(out, w=w)]), j


def test_a_corrupted_weight_in_the_rtl_is_caught():
    model = netgen.example_model()
    spikes = netgen.random_spikes(np.random.default_rng(2), 2, 25, model.n_inputs, 0.2)
    corrupted, unit = corrupt_one_readout_weight(model, spikes)
    run = cosim.run_rtl(corrupted, spikes, sim="verilator")     # the RTL memory holds it
    difference = cosim.compare(model, spikes, run.result)       # compared with the true model
    assert difference is not None
    assert (difference.sample, difference.step, difference.unit) == (0, None, unit)


@pytest.mark.skipif(not icarus_available(), reason="iverilog is not installed")
def test_cli_cosim_result_file_is_identical_to_golden(tmp_path, capsys):
    model = netgen.example_model()
    spikes = netgen.random_spikes(np.random.default_rng(3), 3, 15, model.n_inputs, 0.2)
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes, np.array([0, 1, 2])).save(tmp_path / "in.npz")
    args = [str(tmp_path / "m.npz"), str(tmp_path / "in.npz")]
    assert main(["cosim", *args, "--sim", "icarus", "--out", str(tmp_path / "rtl.npz")]) == 0
    out = capsys.readouterr().out
    assert "RTL == golden" in out and "accuracy" in out and "cycles/s" in out
    assert main(["golden", *args, "--out", str(tmp_path / "golden.npz")]) == 0
    assert (tmp_path / "rtl.npz").read_bytes() == (tmp_path / "golden.npz").read_bytes()


@pytest.mark.skipif(not icarus_available(), reason="iverilog is not installed")
def test_cli_cosim_mismatch_names_the_difference_and_writes_a_waveform(tmp_path, capsys,
                                                                        monkeypatch):
    model = netgen.example_model()
    spikes = netgen.random_spikes(np.random.default_rng(4), 2, 20, model.n_inputs, 0.2)
    corrupted, unit = corrupt_one_readout_weight(model, spikes)
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes).save(tmp_path / "in.npz")
    # the RTL gets the corrupted weights through its configuration stream
    real = cosim._config_blocks
    monkeypatch.setattr(cosim, "_config_blocks", lambda m: real(corrupted))
    code = main(["cosim", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"), "--sim", "icarus",
                 "--out", str(tmp_path / "rtl.npz")])
    out = capsys.readouterr().out
    assert code == 1
    assert f"MISMATCH: first difference at sample 0, scores of layer 1, unit {unit}" in out
    assert (tmp_path / "rtl.sample0.wave.fst").stat().st_size > 1000
    rtl = load_result(tmp_path / "rtl.npz")
    assert (rtl.scores != golden.run(model, spikes).scores).any()


@pytest.mark.skipif(not icarus_available(), reason="iverilog is not installed")
def test_cli_regress(capsys):
    assert main(["regress", "--seeds", "4", "--shapes", "2", "--sim", "icarus", "-j", "2",
                 "--steps", "8", "--max-size", "5"]) == 0
    out = capsys.readouterr().out
    assert "4/4 networks bit-exact" in out


@pytest.mark.skipif(not icarus_available(), reason="iverilog is not installed")
def test_cli_regress_ring(capsys):
    assert main(["regress", "--seeds", "3", "--shapes", "3", "--sim", "icarus", "-j", "2",
                 "--steps", "8", "--max-size", "6", "--scheme", "ring"]) == 0
    out = capsys.readouterr().out
    assert "3/3 networks bit-exact" in out and "scheme ring" in out


@pytest.mark.skipif(not icarus_available(), reason="iverilog is not installed")
def test_cli_regress_reports_a_failure_with_a_reproducer(capsys, monkeypatch):
    # the workers are forked, so they inherit the sabotaged comparison
    monkeypatch.setattr(cosim, "compare", lambda m, s, r: protocol.Difference(0, 1, 0, 0, 1, 0))
    assert main(["regress", "--seeds", "2", "--start", "7", "--shapes", "1", "--sim", "icarus",
                 "-j", "1", "--steps", "4", "--max-size", "4"]) == 1
    out = capsys.readouterr().out
    assert "0/2 networks bit-exact" in out
    assert "delayhw regress --start 7 --seeds 1 --shapes 1 --sim icarus" in out


@pytest.mark.parametrize("sim", SIMS)
def test_a_run_past_its_cycle_bound_stops_with_an_error(sim, monkeypatch):
    """The testbench's timeout (Verilator: its poll of ``done``; Icarus: a timed
    RisingEdge) stops a run that has not finished within its cycle bound: 100 cycles, less
    than the configuration alone takes."""
    model, spikes = netgen.random_case(1, PARAMS, batch=3, steps=12, shape_seed=1)
    monkeypatch.setattr(cosim, "cycle_bound", lambda *args: 100)
    with pytest.raises(DelayhwError, match="did not finish"):
        cosim.run_rtl(model, spikes, sim=sim)
