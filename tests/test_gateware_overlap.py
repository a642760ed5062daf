"""Double-buffered input (issue 10, part 4): input events that arrive while a step computes
belong to the next step, which starts in the cycle the step in progress finishes. Both
schemes, amaranth.sim, against the golden model."""

from dataclasses import replace

import numpy as np
import pytest

from delayhw import golden, netgen
from delayhw.gateware import protocol, pysim
from delayhw.gateware.core import Core
from delayhw.gateware.shape import SCHEMES, CoreShape, InKind
from delayhw.spec import Layer, Model

VARIED = netgen.NetParams(max_inputs=6, max_size=6, max_layers=3, d_max=(0, 5))


def simulate(model, words, lanes, scheme, **kwargs):
    shape = CoreShape.from_model(model, lanes, scheme)
    return shape, pysim.simulate(Core(shape, model), words, **kwargs)


def assert_matches_golden(model, spikes, shape, run):
    result = protocol.decode_outputs(run.outputs, shape, *spikes.shape[:2])
    difference = protocol.first_difference(golden.run(model, spikes), result)
    assert difference is None, str(difference)


def assert_back_to_back(run, batch, steps):
    """Every step but a sample's first was received while the previous one computed (its
    STEP included), and started in the very cycle the previous one finished."""
    assert len(run.step_starts) == len(run.step_dones) == batch * steps
    for b in range(batch):
        for t in range(1, steps):
            n = b * steps + t
            assert run.step_starts[n] == run.step_dones[n - 1], f"sample {b} step {t}"
    assert run.steps_during_steps == batch * (steps - 1)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_a_full_speed_stream_runs_steps_back_to_back(lanes, scheme):
    for seed in range(3):
        model, spikes = netgen.random_case(1000 * lanes + seed, VARIED, batch=2, steps=7)
        shape, run = simulate(model, protocol.batch_words(spikes), lanes, scheme)
        assert_matches_golden(model, spikes, shape, run)
        assert_back_to_back(run, 2, 7)
        # every event of a step after the first (STEP included) arrived while the previous
        # step computed, and each SAMPLE while the last step computed
        events = [int(row.sum()) + 1 for sample in spikes for row in sample[1:]]
        assert run.inputs_during_steps == sum(events) + len(spikes)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_overlapped_stream_gives_the_same_outputs_as_a_waiting_host(scheme):
    for seed in range(3):
        model, spikes = netgen.random_case(1100 + seed, VARIED, batch=2, steps=6)
        words = protocol.batch_words(spikes)
        _, streamed = simulate(model, words, 2, scheme)
        shape, waiting = simulate(model, words, 2, scheme, wait_idle=True)
        assert waiting.inputs_during_steps == 0 and streamed.inputs_during_steps > 0
        assert streamed.outputs == waiting.outputs
        assert streamed.step_cycles == waiting.step_cycles      # a step's work is the same
        assert streamed.cycles < waiting.cycles
        assert_matches_golden(model, spikes, shape, streamed)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("lanes", [1, 2])
def test_output_back_pressure_while_inputs_keep_coming(lanes, scheme):
    for seed in range(3):
        model, _ = netgen.random_case(1200 + seed, VARIED)
        spikes = netgen.random_spikes(np.random.default_rng(seed), 2, 8, model.n_inputs, 0.7)
        # the smallest output queue, so the pressure reaches the engines
        shape = replace(CoreShape.from_model(model, lanes, scheme), out_fifo_depth=4)
        run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes),
                             ready_prob=0.05, seed=seed)
        assert run.backpressure_cycles > 0
        assert_matches_golden(model, spikes, shape, run)
        assert_back_to_back(run, 2, 8)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_repeated_and_out_of_range_events_during_a_step_keep_their_meaning(scheme):
    # each step's events arrive while the previous step computes, twice over, in reverse,
    # with bad indices and a reserved kind between them: repeats count once, bad ones are
    # counted in dropped_inputs and ignored
    model, spikes = netgen.random_case(1300, VARIED, batch=2, steps=6)
    words, bad = [], 0
    for sample in spikes:
        for row in sample:
            active = [protocol.input_word(InKind.SPIKE, int(i)) for i in np.flatnonzero(row)]
            junk = [protocol.input_word(InKind.SPIKE, model.n_inputs + 3), protocol.input_word(3)]
            words += active + junk + active[::-1] + [protocol.input_word(InKind.STEP)]
            bad += len(junk)
        words.append(protocol.input_word(InKind.SAMPLE))
    shape, run = simulate(model, words, 2, scheme)
    assert run.dropped_inputs == bad
    assert run.inputs_during_steps > 0
    assert_matches_golden(model, spikes, shape, run)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_step_whose_events_outlast_the_previous_step_waits_for_its_step_event(scheme):
    # 40 channels all spiking, each event sent three times: a step's 121 input words take
    # longer than the one-unit network's step, so the core idles until each STEP arrives
    rng = np.random.default_rng(8)
    out = Layer(name="o", kind="readout", size=1, w_bits=6, v_bits=16, f_bits=4, beta=12,
                d_max=3, w=rng.integers(-20, 20, (1, 40)), d=rng.integers(0, 4, (1, 40)))
    model = Model(n_inputs=40, layers=(out,)).validate()
    spikes = np.ones((1, 5, 40), dtype=np.uint8)
    spikes[0, 2, ::2] = 0
    words = []
    for row in spikes[0]:
        words += [protocol.input_word(InKind.SPIKE, int(i)) for i in np.flatnonzero(row)] * 3
        words.append(protocol.input_word(InKind.STEP))
    words.append(protocol.input_word(InKind.SAMPLE))
    shape, run = simulate(model, words, 1, scheme)
    assert_matches_golden(model, spikes, shape, run)
    assert max(run.step_cycles) < 3 * 40
    gaps = [start - done for start, done in zip(run.step_starts[1:], run.step_dones)]
    assert len(gaps) == 4 and min(gaps) > 0
    # step t + 1's 3n SPIKE words and its STEP are accepted from the cycle after step t
    # starts, and it starts the cycle after its STEP: 3n + 2 cycles after step t
    words = [3 * int(row.sum()) for row in spikes[0]]
    periods = [b - a for a, b in zip(run.step_starts, run.step_starts[1:])]
    assert periods == [max(c, n + 2) for c, n in zip(run.step_cycles, words[1:])]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("lanes", [1, 2])
def test_sample_cycles_match_the_formula(lanes, scheme):
    # a stream of 3 samples at one word per cycle: the middle sample's cycles, first input
    # word to the next sample's first input word
    for seed in range(3):
        model, spikes = netgen.random_case(1400 + 10 * lanes + seed, VARIED, batch=3, steps=5)
        shape, run = simulate(model, protocol.batch_words(spikes), lanes, scheme)
        expected = golden.run(model, spikes)
        assert_matches_golden(model, spikes, shape, run)
        formula = shape.sample_cycles(spikes[1], [s[1] for s in expected.spikes])
        assert run.sample_starts[2] - run.sample_starts[1] == formula
