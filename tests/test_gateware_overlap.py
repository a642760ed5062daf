"""Double-buffered input (issue 10, part 4): input events that arrive while a step computes
belong to the next step, which starts in the cycle the step in progress finishes. Both
schemes, amaranth.sim, against the golden model."""

from dataclasses import replace

import numpy as np
import pytest

from delayhw import golden, netgen
from delayhw.gateware import protocol, pysim
from delayhw.gateware.core import Core
from delayhw.gateware.shape import SCHEMES, CoreShape
from delayhw.gateware.wire import InKind
from delayhw.spec import Layer, Model

from helpers import VARIED, assert_matches_golden, decode


def simulate(model, words, lanes, scheme, **kwargs):
    shape = CoreShape.from_model(model, lanes, scheme)
    return shape, pysim.simulate(Core(shape, model), words, **kwargs)


def assert_back_to_back(run, batch, steps, shape):
    """Every step but a sample's first was received while the previous one computed (its
    STEP included), and started in the very cycle the previous one finished (``ring``,
    whose steps pipeline: by then, and before it at least once)."""
    assert len(run.step_starts) == len(run.step_dones) == batch * steps
    pairs = [(run.step_starts[b * steps + t], run.step_dones[b * steps + t - 1])
             for b in range(batch) for t in range(1, steps)]
    if shape.cost.pipelined_steps:
        assert all(start <= done for start, done in pairs)
        if len(shape.layers) > 1:       # layer 0 starts the next step as it ends
            assert any(start < done for start, done in pairs)
    else:
        assert all(start == done for start, done in pairs)
    assert run.steps_during_steps == batch * (steps - 1)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_a_full_speed_stream_runs_steps_back_to_back(lanes, scheme):
    for seed in range(3):
        model, spikes = netgen.random_case(1000 * lanes + seed, VARIED, batch=2, steps=7)
        shape, run = simulate(model, protocol.batch_words(spikes), lanes, scheme)
        assert_matches_golden(model, spikes, decode(shape, run, spikes))
        assert_back_to_back(run, 2, 7, shape)
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
        if not shape.cost.pipelined_steps:      # a step's work is the same
            assert streamed.step_cycles == waiting.step_cycles
        assert streamed.cycles < waiting.cycles
        assert_matches_golden(model, spikes, decode(shape, streamed, spikes))


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
        assert_matches_golden(model, spikes, decode(shape, run, spikes))
        assert_back_to_back(run, 2, 8, shape)


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
    assert_matches_golden(model, spikes, decode(shape, run, spikes))


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
    assert_matches_golden(model, spikes, decode(shape, run, spikes))
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
        assert_matches_golden(model, spikes, decode(shape, run, spikes))
        formula = shape.sample_cycles(spikes[1], [s[1] for s in expected.spikes])
        assert run.sample_starts[2] - run.sample_starts[1] == formula


# ----------------------------------------------------------------------------- layer overlap
# Every layer starts with the step and takes its source's spikes only once they are written:
# fifo: a layer's first pass takes a unit of the layer below once that layer has written
# the unit's group (FifoLayer's src.ready); ring: a layer walks its own list of the previous
# step first, then the list of the layer below as that layer appends to it, and ends its
# events phase only when that list is final. So each layer's pipeline drain overlaps the
# next layer's work.


def delay0_chain(rng, n_inputs, sizes, recurrent=None):
    """lif layers of ``sizes`` and a 2-unit readout, every feedforward delay 0 and every
    weight able to fire its target alone: a spike crosses every layer within its step, so
    a layer that read its source before the source had written it would see the previous
    step's spikes (different bits, caught by the golden model). Layer ``recurrent`` (if
    given) also has recurrent synapses of delay 1..2."""
    layers, n_prev = [], n_inputs
    for k, size in enumerate(sizes + [2]):
        last = k == len(sizes)
        w = rng.integers(3, 8, (size, n_prev)) * rng.choice([1, 1, 1, -1], (size, n_prev))
        rec = k == recurrent
        layers.append(Layer(
            name=f"l{k}", kind="readout" if last else "lif", size=size, w_bits=5,
            v_bits=10, f_bits=3, beta=4, d_max=2, w=w, d=np.zeros((size, n_prev), int),
            w_rec=rng.integers(-4, 5, (size, size)) if rec else None,
            d_rec=rng.integers(1, 3, (size, size)) if rec else None,
            threshold=None if last else 3, reset=None if last else "zero"))
        n_prev = size
    return Model(n_inputs=n_inputs, layers=tuple(layers)).validate()


def sequential_cycles(shape, spikes, expected):
    """Cycles per step of the same core before this change, layers one after another,
    each waiting for the previous one's pipeline to drain (the formulas of commit 17ae84f)."""
    if shape.scheme == "fifo":
        return [sum(l.groups(shape.lanes) * l.fan_in + 12 for l in shape.layers) + 1] * len(spikes)
    lif = [s != 0 for s in expected]
    out = []
    for t in range(len(spikes)):
        total = 1
        src = [int(spikes[t].sum())] + [int(s[t].sum()) for s in lif]
        for k, l in enumerate(shape.layers):
            rec = int(lif[k][t - 1].sum()) if l.recurrent and t else 0
            total += l.groups(shape.lanes) * (src[k] + rec + 1) + 11 + 6 * (src[k] + rec > 0)
            total += l.recurrent and not src[k]
        out.append(total)
    return out


CHAINS = {"one-unit layers": ([1, 1, 1], None), "wide then narrow": ([7, 1, 5], None),
          "narrow then wide": ([2, 9, 3], None), "recurrent middle": ([4, 6, 2], 1)}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("chain", CHAINS)
def test_layers_start_early_only_where_their_source_is_written(chain, lanes, scheme):
    sizes, recurrent = CHAINS[chain]
    # the chain must carry spikes, and different ones from step to step in every layer, or
    # reading a stale bit would go unnoticed: the first seed that gives such a case
    for seed in range(100):
        rng = np.random.default_rng(seed)
        model = delay0_chain(rng, 3, sizes, recurrent)
        spikes = netgen.random_spikes(rng, 1, 10, model.n_inputs, 0.3)
        expected = golden.run(model, spikes)
        if all(0 < s[0].sum() < s[0].size and len({r.tobytes() for r in s[0]}) > 1
               for s in expected.spikes):
            break
    else:
        pytest.fail("no seed gives a chain with varied spikes")
    # (a core that loses track of its lists may never finish: fail fast)
    shape, run = simulate(model, protocol.batch_words(spikes), lanes, scheme,
                          max_cycles=20_000)
    assert_matches_golden(model, spikes, decode(shape, run, spikes))
    lif = [s[0] for s in expected.spikes]
    starts, dones = shape.step_schedule(spikes[0], lif)
    assert [c - run.step_starts[0] for c in run.step_starts] == starts
    assert [c - run.step_starts[0] for c in run.step_dones] == dones
    # the overlap: never more cycles than with the layers one after another, fewer over the
    # sample (ring: a step where no layer receives a spike has nothing to overlap)
    now = shape.cycles_of_sample(spikes[0], lif)
    before = sequential_cycles(shape, spikes[0], lif)
    if shape.cost.pipelined_steps:
        # ring: a step's period holds other steps' work, so the sample's sum is compared;
        # and the step pipeline never loses against steps run one at a time
        alone = [shape.cost.step_cycles(*step) for step in shape.sample_steps(spikes[0], lif)]
        assert sum(now) < sum(alone) and sum(now) < sum(before)
    else:
        assert all(c <= then for c, then in zip(now, before))
        assert sum(now) < sum(before)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("lanes", [1, 2])
def test_overlapped_layers_emit_in_layer_order_under_back_pressure(lanes, scheme):
    # fifo: an upper layer may finish its spikes while a lower one waits to emit: lower first
    rng = np.random.default_rng(40 + lanes)
    model = delay0_chain(rng, 3, [3, 1, 4])
    spikes = netgen.random_spikes(rng, 2, 10, model.n_inputs, 0.6)
    shape = replace(CoreShape.from_model(model, lanes, scheme), out_fifo_depth=4)
    free = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
    for seed in range(3):
        pressed = pysim.simulate(Core(shape, model), protocol.batch_words(spikes),
                                 ready_prob=0.05, seed=seed)
        assert pressed.backpressure_cycles > 0
        assert pressed.outputs == free.outputs
        assert_matches_golden(model, spikes, decode(shape, pressed, spikes))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_step_cycles_follow_the_overlap_rule_worked_by_hand(scheme):
    # 2 inputs -> 3 lif -> 1 readout, 1 lane, delays 0; both inputs spike every step, which
    # fires units 0 and 2 of the lif layer (never unit 1) every step.
    # fifo: layer 0 issues its 6 synapses in cycles 1..6 and writes its groups (units) in
    # cycles 2+9, 4+9, 6+9 = 11, 13, 15; the readout's only pass issues unit i in the
    # cycle after unit i's write, 12, 14, 16, writes in 16 + 9 = 25, and the step ends 4
    # cycles later: 29 (one layer after the other: 6 + 12 + 3 + 12 + 1 = 34).
    # ring: layer 0 reads the input list from cycle 0 (entries queued from cycle 2): spikes
    # taken in 2 and 3, issued for 3 cycles from 3 and 6, so its neuron pass starts at
    # 6 + 3 + 7 + 1 = 17, writes its list entries (groups 0 and 2) in 17 + 6 = 23 and 25
    # and ends at 17 + 3 + 8 = 28. The readout (started in cycle 1) reads each entry the
    # cycle after its write and takes it 3 cycles after the write, 26 and 28, issued in 27
    # and 29; its neurons start at max(29 + 1 + 7 + 1, 28 + 1 + 2) = 38 and end at
    # 38 + 1 + 8 = 47, its STEP marker: 48 cycles alone. The steps pipeline: layer 0
    # starts the next step as it ends, in 28 (its STEP came in 4); the readout starts it
    # in 47, as it ends, and layer 0's neuron pass waits for that until 47 + 2 = 49 (not
    # 28 + 17 = 45), so every later step follows from there, 49 - 17 = 32 cycles apart:
    # steps start in 0, 28, 60, 92 and end in 47, 79, 111, 143.
    rng = np.random.default_rng(5)
    hidden = Layer(name="h", kind="lif", size=3, w_bits=5, v_bits=10, f_bits=3, beta=4,
                   d_max=1, w=np.array([[7, 7], [-7, -7], [7, 7]]), d=np.zeros((3, 2), int),
                   threshold=3, reset="zero")
    out = Layer(name="o", kind="readout", size=1, w_bits=5, v_bits=10, f_bits=3, beta=4,
                d_max=1, w=rng.integers(-8, 8, (1, 3)), d=np.zeros((1, 3), int))
    model = Model(n_inputs=2, layers=(hidden, out)).validate()
    spikes = np.ones((1, 4, 2), dtype=np.uint8)
    expected = golden.run(model, spikes)
    assert (expected.spikes[0][0] == [1, 0, 1]).all()
    shape, run = simulate(model, protocol.batch_words(spikes), 1, scheme)
    assert_matches_golden(model, spikes, decode(shape, run, spikes))
    lif = [s[0] for s in expected.spikes]
    starts = [c - run.step_starts[0] for c in run.step_starts]
    dones = [c - run.step_starts[0] for c in run.step_dones]
    if scheme == "fifo":
        assert starts == [0, 29, 58, 87] and dones == [29, 58, 87, 116]
        assert shape.cycles_of_sample(spikes[0], lif) == [29] * 4
    else:
        assert starts == [0, 28, 60, 92] and dones == [47, 79, 111, 143]
        # periods, the last step's to its end and one more (where the sample's end begins)
        assert shape.cycles_of_sample(spikes[0], lif) == [28, 32, 32, 52]
    assert shape.step_schedule(spikes[0], lif) == (starts, dones)
