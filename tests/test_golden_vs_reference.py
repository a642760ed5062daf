"""The vectorised golden model against the plain-loop implementation of section 3."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delayhw import golden, netgen, reference
from strategies import models, spike_inputs


def assert_same(model, spikes):
    result = golden.run(model, spikes)
    scores, trains = reference.run(model, spikes)
    np.testing.assert_array_equal(result.scores, np.array(scores, dtype=np.int64))
    assert len(result.spikes) == len(trains) == len(model.lif_layers)
    for n, train in enumerate(trains):
        np.testing.assert_array_equal(result.spikes[n], np.array(train, dtype=np.uint8),
                                      err_msg=f"lif layer {n}")
    expected_pred = [int(np.argmax(s)) for s in scores]
    np.testing.assert_array_equal(result.predictions, expected_pred)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_golden_matches_reference_on_random_networks(data):
    model = data.draw(models())
    spikes = data.draw(spike_inputs(model.n_inputs))
    assert_same(model, spikes)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_golden_matches_reference_with_saturating_narrow_membranes(data):
    # v_bits 4..5 with up to 8-bit weights: the clamp is hit constantly at both ends.
    model = data.draw(models(v_bits=(4, 5)))
    spikes = data.draw(spike_inputs(model.n_inputs))
    assert_same(model, spikes)


def test_golden_matches_reference_on_regression_cases():
    # The generator behind `delayhw regress`, with wider layers and longer delays.
    params = netgen.NetParams(max_inputs=10, max_size=10, d_max=(0, 12))
    for seed in range(60):
        model, spikes = netgen.random_case(seed, params, batch=2, steps=16)
        assert_same(model, spikes)


def test_float64_path_for_wide_weights():
    # 16-bit weights with large fan-in push the exactness bound past 2**24 (float64 path).
    rng = np.random.default_rng(5)
    params = netgen.NetParams(max_inputs=1, max_size=1, max_layers=1)
    model, _ = netgen.random_case(0, params)
    layer = model.layers[0]
    from dataclasses import replace
    n_in = 1200
    w = rng.choice([-32768, 32767, 0, 5], size=(3, n_in))   # row |sum| ~ 2**24.2
    layer = replace(layer, size=3, w_bits=16, v_bits=32, w=w, d=rng.integers(0, 4, size=(3, n_in)),
                    d_max=3, bias=None)
    model = replace(model, n_inputs=n_in, layers=(layer,)).validate()
    assert golden._exact_float(layer.w) is np.float64
    spikes = netgen.random_spikes(rng, 2, 6, n_in, 0.5)
    assert_same(model, spikes)


def test_batch_chunking_gives_the_same_result(monkeypatch):
    model, spikes = netgen.random_case(3, batch=7, steps=9)
    whole = golden.run(model, spikes)
    monkeypatch.setattr(golden, "CHUNK_BYTES", 1)     # one sample per chunk
    chunked = golden.run(model, spikes)
    np.testing.assert_array_equal(whole.scores, chunked.scores)
    for a, b in zip(whole.spikes, chunked.spikes):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data(), per_group=st.sampled_from([1, 2, 3]))
def test_bounded_memory_path_matches_reference(data, per_group, monkeypatch):
    # Weight blocks built a group of `per_group` delays at a time, recurrence spike by spike:
    # the path wide layers with many distinct delays take (golden.STACK_BYTES exceeded).
    model = data.draw(models(max_d=7))
    spikes = data.draw(spike_inputs(model.n_inputs))
    widest = max(l.size * l.n_in for l in model.layers)
    monkeypatch.setattr(golden, "STACK_BYTES", 4 * widest * per_group)   # float32 blocks
    assert_same(model, spikes)


def test_bounded_memory_path_is_taken_for_many_delays(monkeypatch):
    model, spikes = netgen.random_case(4, netgen.NetParams(max_inputs=12, max_size=12,
                                                           d_max=(6, 12)), batch=3, steps=20)
    monkeypatch.setattr(golden, "STACK_BYTES", 1)
    plans = [golden._LayerPlan(l) for l in model.layers]
    assert all(not p.ff.whole for p in plans if len(p.ff.ks) > 1)
    assert any(p.rec_events for p in plans) == any(l.recurrent for l in model.layers)
    assert_same(model, spikes)
