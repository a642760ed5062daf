"""The Amaranth core in amaranth.sim against the golden model, and its defined behaviour on
bad input, back-pressure and reset."""

from dataclasses import replace

import numpy as np
import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from delayhw import DelayhwError, golden, netgen
from delayhw.spec import Layer, Model
from delayhw.gateware import protocol, pysim
from delayhw.gateware.core import (CONFIG_LAYOUT, INPUT_LAYOUT, Core, built_memory_bits,
                                   count_saturating, delay_chain, output_layout)
from delayhw.gateware.shape import SCHEMES, CoreShape, config_words
from delayhw.gateware.wire import INDEX_BITS, Field, InKind, OutKind, Param, config_address

from helpers import VARIED, assert_matches_golden, run_and_decode


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("seed", range(10))
def test_core_matches_golden_on_random_networks(seed, lanes):
    model, spikes = netgen.random_case(1000 * lanes + seed, VARIED, batch=2, steps=7)
    _, result = run_and_decode(model, spikes, lanes)
    assert_matches_golden(model, spikes, result)


@pytest.mark.slow
@pytest.mark.parametrize("lanes", [1, 2, 4, 8])
@pytest.mark.parametrize("seed", range(100))
def test_core_matches_golden_sweep(seed, lanes):
    params = netgen.NetParams(max_inputs=12, max_size=12, max_layers=4, d_max=(0, 20))
    model, spikes = netgen.random_case(50_000 + 1000 * lanes + seed, params, batch=2, steps=12)
    _, result = run_and_decode(model, spikes, lanes, ready_prob=0.6, seed=seed)
    assert_matches_golden(model, spikes, result)


def test_the_random_networks_cover_every_feature():
    # the default sweep above must exercise what the issue lists, else it proves little
    models = [netgen.random_case(1000 * lanes + seed, VARIED)[0]
              for lanes in (1, 2, 4) for seed in range(10)]
    layers = [l for m in models for l in m.layers]
    assert any(l.recurrent for l in layers) and any(not l.recurrent for l in layers if l.kind == "lif")
    assert any(l.has_bias for l in layers) and any(not l.has_bias for l in layers)
    assert {l.reset for l in layers if l.kind == "lif"} == {"subtract", "zero"}
    assert any(l.d_max == 0 for l in layers) and any(l.d_max >= 4 for l in layers)
    assert any(len(m.layers) >= 3 for m in models) and any(len(m.layers) == 1 for m in models)
    assert any((l.d == 0).any() and (l.d == l.d_max).any() and l.d_max > 0 for l in layers)


@pytest.mark.parametrize("widths", [dict(w_bits=(16, 16), v_bits=(32, 32), f_bits=(16, 16)),
                                    dict(w_bits=(2, 2), v_bits=(4, 4), f_bits=(1, 1))],
                         ids=["widest", "narrowest"])
def test_width_extremes(widths):
    params = replace(VARIED, **widths)
    for seed in range(3):
        model, spikes = netgen.random_case(900 + seed, params, batch=2, steps=8)
        _, result = run_and_decode(model, spikes, 2)
        assert_matches_golden(model, spikes, result)


def test_delay_extremes_and_deep_recurrence():
    # d_max 255 and recurrent delays up to d_max on a tiny network, 260 steps
    rng = np.random.default_rng(3)
    params = netgen.NetParams(max_inputs=2, max_size=2, max_layers=2, d_max=(255, 255),
                              p_recurrent=1.0)
    model = netgen.random_model(rng, params)
    spikes = netgen.random_spikes(rng, 1, 260, model.n_inputs, 0.3)
    _, result = run_and_decode(model, spikes, 2)
    assert_matches_golden(model, spikes, result)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("lanes", [1, 4])
def test_configuration_stream_gives_the_same_bits_as_elaboration(lanes, scheme):
    for seed in range(4 if scheme == "fifo" else 3):
        model, spikes = netgen.random_case(200 + seed, VARIED, batch=2, steps=6)
        elaborated, _ = run_and_decode(model, spikes, lanes, scheme=scheme)
        configured, result = run_and_decode(model, spikes, lanes, from_config=True,
                                            scheme=scheme)
        assert configured.outputs == elaborated.outputs
        assert configured.config_errors == 0
        assert_matches_golden(model, spikes, result)


def test_one_core_runs_another_network_of_the_same_shape():
    rng = np.random.default_rng(7)
    model_a = netgen.random_model(rng, VARIED)
    # same shape, new contents: B's weights, delays, biases, decay, thresholds drawn afresh
    model_b = netgen.random_contents(rng, model_a.n_inputs, [l.shape for l in model_a.layers])
    shape = CoreShape.from_model(model_a)
    assert CoreShape.from_model(model_b) == shape
    assert any(not np.array_equal(a.w, b.w) for a, b in zip(model_a.layers, model_b.layers))
    spikes = netgen.random_spikes(rng, 2, 6, model_a.n_inputs, 0.4)
    assert not np.array_equal(golden.run(model_a, spikes).scores,
                              golden.run(model_b, spikes).scores), "B must compute otherwise"
    run = pysim.simulate(Core(shape, model_a), protocol.batch_words(spikes),
                         protocol.config_stream(model_b))
    assert_matches_golden(model_b, spikes, protocol.decode_outputs(run.outputs, shape, 2, 6))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("lanes", [1, 2])
def test_random_output_back_pressure_changes_nothing(lanes, scheme):
    for seed in range(3):
        model, _ = netgen.random_case(300 + seed, VARIED)
        spikes = netgen.random_spikes(np.random.default_rng(seed), 2, 8, model.n_inputs, 0.7)
        # the smallest output queue, so the pressure reaches the engines
        free, _ = run_and_decode(model, spikes, lanes, queue=4, scheme=scheme)
        pressed, result = run_and_decode(model, spikes, lanes, queue=4, ready_prob=0.03,
                                         seed=seed, scheme=scheme)
        assert pressed.outputs == free.outputs
        assert pressed.backpressure_cycles > 0 and free.backpressure_cycles == 0
        assert max(pressed.step_cycles) > max(free.step_cycles)     # the engines stalled
        assert_matches_golden(model, spikes, result)


def test_out_of_range_inputs_are_counted_and_ignored():
    model, spikes = netgen.random_case(400, VARIED, batch=2, steps=5)
    shape = CoreShape.from_model(model)
    clean = protocol.batch_words(spikes)
    bad_words = [protocol.input_word(InKind.SPIKE, model.n_inputs),
                 protocol.input_word(InKind.SPIKE, 0xFFFF), protocol.input_word(3)]
    dirty = []
    for n, word in enumerate(clean):
        dirty.append(word)
        if n % 4 == 0:
            dirty.extend(bad_words)
    added = len(dirty) - len(clean)
    run = pysim.simulate(Core(shape, model), dirty)
    assert run.dropped_inputs == added
    assert run.outputs == pysim.simulate(Core(shape, model), clean).outputs


def test_bad_configuration_writes_are_flagged_and_ignored():
    model, spikes = netgen.random_case(500, netgen.NetParams(p_recurrent=1.0, p_bias=0.0,
                                                             max_layers=2, d_max=(2, 4)),
                                       batch=1, steps=5)
    hidden = model.layers[0]
    assert hidden.kind == "lif" and hidden.recurrent and not hidden.has_bias
    wmax = 2 ** (hidden.w_bits - 1) - 1
    vmax = 2 ** (hidden.v_bits - 1) - 1
    bad = [
        (config_address(len(model.layers), Field.W, 0, 0), 0),                 # no such layer
        (config_address(0, Field.W, hidden.size, 0), 1),                       # row out of range
        (config_address(0, Field.W, 0, hidden.n_in), 1),                       # col out of range
        (config_address(0, Field.W, 0, 0), wmax + 1),                          # weight too big
        (config_address(0, Field.W_REC, 0, 0), -wmax - 2),                     # weight too small
        (config_address(0, Field.D, 0, 0), hidden.d_max + 1),                  # delay > d_max
        (config_address(0, Field.D_REC, 0, 0), 0),                             # recurrent delay 0
        (config_address(0, Field.BIAS, 0, 0), 1),                              # layer has no bias
        (config_address(0, Field.PARAM, Param.THRESHOLD, 0), 0),               # threshold < 1
        (config_address(0, Field.PARAM, Param.THRESHOLD, 0), vmax + 1),        # threshold > vmax
        (config_address(0, Field.PARAM, Param.BETA, 0), 2 ** hidden.f_bits + 1),
        (config_address(0, Field.PARAM, Param.RESET, 0), 2),
        (config_address(len(model.layers) - 1, Field.PARAM, Param.THRESHOLD, 0), 1),  # readout
        (config_address(0, 6, 0, 0), 0),                                      # no such field
        (config_address(0, 7, 0, 0), 0),
    ]
    shape = CoreShape.from_model(model)
    words = [protocol.config_word(a, v) for a, v in bad]
    run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes), words)
    assert run.config_errors == len(bad)
    assert run.outputs == pysim.simulate(Core(shape, model), protocol.batch_words(spikes)).outputs


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bad_writes_between_back_to_back_good_writes_are_counted_and_change_nothing(scheme):
    # an empty core loaded from the configuration stream, one write per cycle, with a bad
    # write of the same entry (value out of range) right before and right after each good
    # one: every bad write is counted, none lands, and no good write is lost or delayed
    model, spikes = netgen.random_case(510, VARIED, batch=2, steps=6)
    shape = CoreShape.from_model(model, 1, scheme)
    good = list(config_words(model))

    def too_big(address):           # the smallest value out of range for the entry
        layer = model.layers[address >> (2 * INDEX_BITS + 3)]
        field, row = (address >> (2 * INDEX_BITS)) & 7, (address >> INDEX_BITS) & 0xFFFF
        if field in (Field.D, Field.D_REC):
            return layer.d_max + 1
        if field == Field.PARAM:
            return {Param.BETA: 2 ** layer.f_bits + 1, Param.THRESHOLD: 2 ** (layer.v_bits - 1),
                    Param.RESET: 2}[row]
        return 2 ** (layer.w_bits - 1)

    words = []
    for address, value in good:
        words += [protocol.config_word(address, -2 ** 30), protocol.config_word(address, value),
                  protocol.config_word(address, too_big(address))]
    run = pysim.simulate(Core(shape), protocol.batch_words(spikes), words)
    assert run.config_errors == 2 * len(good)
    assert_matches_golden(model, spikes, protocol.decode_outputs(run.outputs, shape, 2, 6))


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("cut", [3, 9])
def test_reset_in_the_middle_of_a_sample_returns_to_a_clean_state(cut, scheme):
    model, spikes = netgen.random_case(600, netgen.NetParams(p_recurrent=1.0, d_max=(2, 5)),
                                       batch=2, steps=6)
    shape = CoreShape.from_model(model, 1, scheme)
    words = protocol.batch_words(spikes)
    # part of a first sample, a reset, then the whole batch
    run = pysim.simulate(Core(shape, model), words[:cut] + words, reset_after=cut)
    after = run.outputs[run.outputs_before_reset:]
    assert_matches_golden(model, spikes, protocol.decode_outputs(after, shape, 2, 6))


def test_cycles_per_step_matches_the_formula():
    for seed, lanes in [(0, 1), (1, 2), (2, 4), (3, 1)]:
        model, spikes = netgen.random_case(700 + seed, VARIED, batch=1, steps=4)
        shape = CoreShape.from_model(model, lanes)
        run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
        assert run.step_cycles == [shape.cycles_per_step()] * 4


def test_payload_packing_matches_the_amaranth_layouts():
    assert INPUT_LAYOUT.size == protocol.INPUT_BITS
    assert CONFIG_LAYOUT.size == protocol.CONFIG_BITS
    assert (INPUT_LAYOUT["kind"].offset, INPUT_LAYOUT["index"].offset) == (0, 2)
    shape = CoreShape.from_model(netgen.example_model(), max_steps=1000)
    assert shape.score_bits == 14 + 10
    layout = output_layout(shape.score_bits)
    assert layout.size == protocol.output_bits(shape) == 2 + 8 + 16 + 24
    for value in (-5, -(2 ** 23), 2 ** 23 - 1):
        word = (OutKind.SCORE | (3 << layout["layer"].offset) | (17 << layout["unit"].offset)
                | ((value & (2 ** 24 - 1)) << layout["value"].offset))
        assert protocol.unpack_output(word, shape.score_bits) == (OutKind.SCORE, 3, 17, value)
    addr = config_address(2, Field.D_REC, 5, 9)
    fields = CONFIG_LAYOUT["addr"].shape
    assert (addr >> fields["layer"].offset) & 0xFF == 2
    assert (addr >> fields["field"].offset) & 0x7 == Field.D_REC
    assert (addr >> fields["row"].offset) & 0xFFFF == 5
    assert (addr >> fields["col"].offset) & 0xFFFF == 9
    assert protocol.config_word(addr, -1) >> CONFIG_LAYOUT["data"].offset == 2**32 - 1


def test_decoder_rejects_protocol_violations():
    model, spikes = netgen.random_case(800, VARIED, batch=1, steps=3)
    shape = CoreShape.from_model(model)
    run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
    good = run.outputs
    protocol.decode_outputs(good, shape, 1, 3)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_outputs(good[:-1], shape, 1, 3)          # missing SAMPLE
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_outputs(good + good, shape, 1, 3)        # extra sample
    step = next(w for w in good if protocol.unpack_output(w, shape.score_bits)[0] == OutKind.STEP)
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_outputs([step] + good, shape, 1, 3)      # extra step


@pytest.mark.parametrize("scheme", SCHEMES)
def test_memory_bits_formula_counts_what_is_built(scheme):
    for seed in range(8):
        model = netgen.random_model(np.random.default_rng(seed), VARIED)
        for lanes in (1, 4):
            core = Core.from_model(model, lanes, scheme)
            assert built_memory_bits(core) == core.shape.memory_bits()


def saturating_readout(max_steps: int) -> Model:
    """One readout layer of 4-bit membranes whose units sit at vmin (-8) and vmax (7) every
    step, so their scores reach the extremes ``max_steps`` steps can produce."""
    out = Layer(name="o", kind="readout", size=2, w_bits=4, v_bits=4, f_bits=1, beta=2,
                d_max=0, w=np.zeros((2, 1), dtype=np.int64), d=np.zeros((2, 1), dtype=np.int64),
                bias=np.array([-8, 7]))
    return Model(n_inputs=1, layers=(out,)).validate()


def test_score_bits_follow_the_step_bound():
    # |sum_t v| <= T * 2**(v_bits-1): v_bits + ceil(log2(max_steps)) signed bits
    for v_bits, max_steps, want in [(4, 1, 4), (4, 2, 5), (4, 8, 7), (4, 9, 8), (20, 65535, 36),
                                    (32, 2 ** 32, 64)]:
        layer = replace(saturating_readout(8).layers[0].shape, v_bits=v_bits)
        shape = CoreShape(n_inputs=1, layers=(layer,), max_steps=max_steps)
        assert shape.score_bits == want
        lo, hi = -(2 ** (want - 1)), 2 ** (want - 1) - 1
        assert lo <= -max_steps * 2 ** (v_bits - 1) and max_steps * (2 ** (v_bits - 1) - 1) <= hi
        if want > v_bits:       # and one bit fewer would not do
            assert -max_steps * 2 ** (v_bits - 1) < lo // 2
    with pytest.raises(DelayhwError, match="max_steps"):
        CoreShape(n_inputs=1, layers=(layer,), max_steps=0)


@pytest.mark.parametrize("from_config", [False, True])
def test_scores_are_exact_up_to_max_steps_and_flagged_beyond(from_config):
    model = saturating_readout(8)
    shape = CoreShape.from_model(model, max_steps=8)
    assert shape.score_bits == 7                 # -8 * 8 = -64 is the 7-bit minimum
    core = (lambda: Core(shape)) if from_config else (lambda: Core(shape, model))
    config = protocol.config_stream(model) if from_config else []
    spikes = np.zeros((2, 8, 1), dtype=np.uint8)
    run = pysim.simulate(core(), protocol.batch_words(spikes), config)
    result = protocol.decode_outputs(run.outputs, shape, 2, 8)
    assert result.scores.tolist() == [[-64, 56]] * 2
    assert_matches_golden(model, spikes, result)
    # one step more: the SAMPLE event says the scores are not exact, the decoder refuses
    longer = np.zeros((1, 9, 1), dtype=np.uint8)
    run = pysim.simulate(core(), protocol.batch_words(longer), config)
    sample = [protocol.unpack_output(w, 7) for w in run.outputs][-1]
    assert sample[0] == OutKind.SAMPLE and sample[3] == 1
    with pytest.raises(protocol.ProtocolError, match="max_steps 8"):
        protocol.decode_outputs(run.outputs, shape, 1, 9)
    with pytest.raises(DelayhwError, match="max_steps 8"):
        protocol.check_steps(shape, 9)
    # the flag is per sample: the next sample of 8 steps is exact again
    run = pysim.simulate(core(), protocol.batch_words(longer) + protocol.batch_words(spikes[:1]),
                         config)
    samples = [w for w in run.outputs if protocol.unpack_output(w, 7)[0] == OutKind.SAMPLE]
    assert [protocol.unpack_output(w, 7)[3] for w in samples] == [1, 0]


def test_status_counters_saturate_and_delay_chains_delay():
    """``count_saturating`` adds 1 per cycle its event is high and stops at all ones;
    ``delay_chain``'s stage ``n`` is the signal ``n`` cycles earlier."""
    m = Module()
    counter, event, source = Signal(3), Signal(), Signal(4)
    count_saturating(m, counter, event)
    chain = delay_chain(m, source, 3, "source")
    pattern = [1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1]
    counts, stages = [], []

    async def bench(ctx):
        for n, bit in enumerate(pattern):
            ctx.set(event, bit)
            ctx.set(source, n)
            await ctx.tick()
            counts.append(ctx.get(counter))
            stages.append([ctx.get(s) for s in chain[1:]])

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert counts == [min(7, sum(pattern[:n + 1])) for n in range(len(pattern))]
    assert [s[2] for s in stages[3:]] == list(range(1, len(pattern) - 2))
    assert [s[0] for s in stages] == list(range(len(pattern)))
