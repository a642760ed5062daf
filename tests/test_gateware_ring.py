"""The ``ring`` scheme (event-driven rings of future currents) in amaranth.sim against the
golden model: random networks over every lane count, the read-modify-write hazard, repeated
inputs, cycles against the formula. Back-pressure, configuration, reset and memory bits are
tested for both schemes in tests/test_gateware_core.py."""

from dataclasses import replace

import numpy as np
import pytest

from delayhw import golden, netgen
from delayhw.gateware import protocol, pysim
from delayhw.gateware.core import Core
from delayhw.gateware.shape import CoreShape
from delayhw.gateware.wire import InKind
from delayhw.spec import Layer, Model

from helpers import VARIED, assert_matches_golden, run_and_decode


def ring_run(model, spikes, lanes=1, **kwargs):
    """Run ``spikes`` through a ring core: the run and the result."""
    return run_and_decode(model, spikes, lanes, scheme="ring", **kwargs)


@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("seed", range(6))
def test_ring_matches_golden_on_random_networks(seed, lanes):
    # the seeds of tests/test_gateware_core.py, whose coverage test checks the features
    model, spikes = netgen.random_case(1000 * min(lanes, 4) + seed, VARIED, batch=2, steps=7)
    _, result = ring_run(model, spikes, lanes)
    assert_matches_golden(model, spikes, result)


@pytest.mark.slow
@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("seed", range(60))
def test_ring_matches_golden_sweep(seed, lanes):
    params = netgen.NetParams(max_inputs=24, max_size=24, max_layers=4, d_max=(0, 20))
    model, spikes = netgen.random_case(70_000 + 1000 * lanes + seed, params, batch=2, steps=12)
    _, result = ring_run(model, spikes, lanes, ready_prob=0.6, seed=seed)
    assert_matches_golden(model, spikes, result)


def _pileup_model(n_inputs: int, delay: int, d_max: int, readout_only: bool,
                  units: int = 1) -> Model:
    """Layers of ``units`` identical units, every synapse with the same delay, so all
    spikes of a step add into the same slots back to back (with 2 units on 1 lane, every
    other cycle), and no leak (beta 0), so a lost addition shows: a lif unit (weights 1,
    threshold ``n_inputs``, reset to zero) spikes only if every addition arrived; a
    readout's score is the sum of every current."""
    full = np.full((units, n_inputs), delay)
    out = Layer(name="o", kind="readout", size=units, w_bits=6, v_bits=16, f_bits=4, beta=0,
                d_max=d_max, w=np.tile(np.arange(1, n_inputs + 1), (units, 1)), d=full)
    if readout_only:
        return Model(n_inputs=n_inputs, layers=(out,)).validate()
    hidden = Layer(name="h", kind="lif", size=units, w_bits=6, v_bits=12, f_bits=4, beta=0,
                   d_max=d_max, w=np.ones((units, n_inputs), dtype=np.int64), d=full,
                   threshold=n_inputs, reset="zero")
    out = replace(out, w=np.full((units, units), 9), d=np.full((units, units), delay))
    return Model(n_inputs=n_inputs, layers=(hidden, out)).validate()


@pytest.mark.parametrize("lanes, units", [(1, 1), (1, 2), (4, 1)])
@pytest.mark.parametrize("delay, d_max", [(0, 0), (2, 3), (3, 3)])
@pytest.mark.parametrize("readout_only", [False, True], ids=["lif", "readout"])
def test_back_to_back_additions_to_one_unit_and_slot(delay, d_max, readout_only, lanes, units):
    # the read-modify-write hazard: 24 input spikes per step all land in the same slot of
    # each unit, one addition per cycle (1 unit: the same address every cycle, 2 units on 1
    # lane: every other cycle); a lost addition changes the spikes or score
    model = _pileup_model(24, delay, d_max, readout_only, units)
    spikes = np.ones((1, 8, 24), dtype=np.uint8)
    spikes[0, 3, 5] = 0
    spikes[0, 5, ::3] = 0
    _, result = ring_run(model, spikes, lanes)
    assert_matches_golden(model, spikes, result)
    expected = golden.run(model, spikes)
    if readout_only:        # beta 0: v(t) = I(t), score = sum of every current
        w = model.layers[0].w[0]
        assert (expected.scores[0] == int((spikes[0, :8 - delay] @ w).sum())).all()
    else:
        assert 0 < expected.spikes[0][0, :, 0].sum() < 8    # full steps spike, partial ones not


def test_layers_smaller_than_the_lanes_and_the_pipeline():
    # 3 units on 8 lanes: every spike word of the hidden layer carries several spikes that
    # the readout visits on consecutive cycles, into the same ring rows
    rng = np.random.default_rng(5)
    params = netgen.NetParams(max_inputs=3, max_size=3, max_layers=3, d_max=(1, 2),
                              p_recurrent=1.0)
    for seed in range(3):
        model = netgen.random_model(np.random.default_rng(seed), params)
        spikes = netgen.random_spikes(rng, 2, 10, model.n_inputs, 0.9)
        _, result = ring_run(model, spikes, 8)
        assert_matches_golden(model, spikes, result)


def doubled_words(spikes) -> list[int]:
    """The input words of ``spikes`` with every step's SPIKEs sent twice (the second time
    in reverse order)."""
    words = []
    for sample in spikes:
        for row in sample:
            active = [protocol.input_word(InKind.SPIKE, int(i)) for i in np.flatnonzero(row)]
            words += active + active[::-1] + [protocol.input_word(InKind.STEP)]
        words.append(protocol.input_word(InKind.SAMPLE))
    return words


def test_repeated_input_events_in_a_step_count_once():
    # SPIKE(i) marks channel i: sending it twice in a step must not add its weights twice
    # (a readout without leak scores the sum of every current, so any double shows)
    model = _pileup_model(6, 1, 2, readout_only=True)
    spikes = netgen.random_spikes(np.random.default_rng(4), 2, 6, 6, 0.5)
    words = doubled_words(spikes)
    assert len(words) > len(protocol.batch_words(spikes))
    _, result = ring_run(model, spikes, 2, words=words)
    assert_matches_golden(model, spikes, result)


def test_events_after_a_samples_last_step_are_discarded_and_forgotten():
    # SPIKEs sent after a sample's last STEP are discarded; their bits in the fill bank's
    # bitmap must be cleared at the sample's end (the CLEAR walk then walks the bitmaps),
    # or the next sample's first step would take those channels as repeats and drop them
    model = _pileup_model(12, 1, 2, readout_only=False, units=3)
    spikes = netgen.random_spikes(np.random.default_rng(9), 2, 4, 12, 0.5)
    spikes[1, 0] = 1                    # every channel in the next sample's first step
    sample_words = [protocol.sample_words(sample) for sample in spikes]
    extra = [protocol.input_word(InKind.SPIKE, i) for i in range(12)]
    words = sample_words[0][:-1] + extra + sample_words[0][-1:] + sample_words[1]
    _, result = ring_run(model, spikes, 2, words=words)
    assert_matches_golden(model, spikes, result)


def test_a_sample_end_walks_the_input_bitmaps_only_when_they_hold_events():
    # 40 input channels, a ring walk of 4 rows: after a sample without events after its
    # last STEP the bitmaps are clear (layer 0 clears every event it takes) and the CLEAR
    # walk is the rings' alone; the middle of 3 streamed samples takes the formula's cycles
    rng = np.random.default_rng(3)
    out = Layer(name="o", kind="readout", size=2, w_bits=6, v_bits=16, f_bits=4, beta=12,
                d_max=1, w=rng.integers(-20, 20, (2, 40)), d=rng.integers(0, 2, (2, 40)))
    model = Model(n_inputs=40, layers=(out,)).validate()
    spikes = netgen.random_spikes(rng, 3, 4, 40, 0.1)
    shape = CoreShape.from_model(model, 1, "ring")
    run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
    assert shape.clear_cycles(after_sample=True) == 4 + 2 < shape.clear_cycles() == 40 + 2
    expected = golden.run(model, spikes)
    formula = shape.sample_cycles(spikes[1], [s[1] for s in expected.spikes])
    assert run.sample_starts[2] - run.sample_starts[1] == formula


def test_cycles_per_step_match_the_formula():
    # the formula counts spikes: take them from the golden model, step by step
    params = replace(VARIED, p_recurrent=0.6)
    rng = np.random.default_rng(11)
    for seed, lanes in [(0, 1), (1, 2), (2, 4), (3, 1), (4, 8), (5, 2)]:
        model = netgen.random_model(np.random.default_rng(720 + seed), params)
        spikes = netgen.random_spikes(rng, 1, 8, model.n_inputs, 0.4)
        shape = CoreShape.from_model(model, lanes, "ring")
        run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
        expected = golden.run(model, spikes)
        lif = [s[0] for s in expected.spikes]
        # every step's start and end (its STEP marker), from the first step's start
        starts, dones = shape.step_schedule(spikes[0], lif)
        first = run.step_starts[0]
        assert [c - first for c in run.step_starts] == starts
        assert [c - first for c in run.step_dones] == dones
        periods = shape.cycles_of_sample(spikes[0], lif)
        assert max(periods[:-1]) <= shape.cycles_per_step()  # the manifest's worst case


@pytest.mark.parametrize("input_ram, distributed", [("auto", 0), ("lut", 2)])
def test_lut_input_ram_asks_for_distributed_ram_only_when_asked(input_ram, distributed):
    # input_ram="lut" (ECP5 builds) marks the input memories, and only them, for LUT RAM:
    # the two input bitmaps (the input event list stays synthesis's choice)
    from delayhw.gateware.verilog import convert_rtlil
    model, _ = netgen.random_case(3, VARIED, batch=1, steps=2)
    shape = CoreShape.from_model(model, 2, "ring", input_ram=input_ram)
    text = convert_rtlil(Core(shape, model))
    assert text.count('attribute \\ram_style "distributed"') == distributed


@pytest.mark.parametrize("lanes", [1, 8])
def test_ring_with_lut_bitmaps_matches_golden(lanes):
    # the memory attribute changes where synthesis puts the bitmaps, never what the core does;
    # every SPIKE is sent twice, so the bitmaps' repeat detection is exercised too
    model, spikes = netgen.random_case(1000 * min(lanes, 4) + 7, VARIED, batch=2, steps=7)
    shape = CoreShape.from_model(model, lanes, "ring", input_ram="lut")
    words = doubled_words(spikes)
    run = pysim.simulate(Core(shape, model), words, [])
    result = protocol.decode_outputs(run.outputs, shape, *spikes.shape[:2])
    assert_matches_golden(model, spikes, result)
