"""The golden model's alternative paths (issue 22), each forced and checked against the
plain-loop implementation of section 3, and its memory estimate checked as an upper bound."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from delayhw import golden, netgen, reference
from delayhw.spec import Layer, Model
from strategies import models, spike_inputs


def assert_same(model, spikes):
    result = golden.run(model, spikes)
    scores, trains = reference.run(model, spikes)
    np.testing.assert_array_equal(result.scores, np.array(scores, dtype=np.int64))
    for n, train in enumerate(trains):
        np.testing.assert_array_equal(result.spikes[n], np.array(train, dtype=np.uint8),
                                      err_msg=f"lif layer {n}")


def recurrent_paths_taken(monkeypatch, force=None):
    """Count the steps that take the dense recurrent matmul and the spike-by-spike path;
    with ``force`` ("dense" or "events") take that one whenever the layer allows it."""
    taken = {"dense": 0, "events": 0}
    cheaper = golden._LayerPlan.dense_is_cheaper

    def counting_cheaper(self, spikes, batch):
        if self.rec_stack is None:          # no dense form (blocks split): not a choice
            return False
        if force is None:
            dense = cheaper(self, spikes, batch)
        else:
            dense = force == "dense"
        taken["dense" if dense else "events"] += 1
        return dense

    monkeypatch.setattr(golden._LayerPlan, "dense_is_cheaper", counting_cheaper)
    return taken


SETTINGS = settings(max_examples=60, deadline=None,      # about 3 in 4 drawn models have no
                    suppress_health_check=[HealthCheck.too_slow,   # recurrent first layer
                                           HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.data())
@pytest.mark.parametrize("path", ["dense", "events"])
def test_each_recurrent_path_alone_matches_reference(data, path, monkeypatch):
    model = data.draw(models(max_size=6, max_d=6, max_layers=2))
    assume(model.layers[0].recurrent)
    spikes = data.draw(spike_inputs(model.n_inputs))
    taken = recurrent_paths_taken(monkeypatch, force=path)
    assert_same(model, spikes)
    assert taken["dense" if path == "events" else "events"] == 0


def recurrent_model(n=12, d_max=1):
    """n inputs -> n recurrent lif (recurrent delays 1..d_max, low threshold) -> 3 readout."""
    rng = np.random.default_rng(3)
    hidden = Layer(name="h", kind="lif", size=n, w_bits=8, v_bits=12, f_bits=4, beta=12,
                   d_max=d_max, w=rng.integers(-20, 60, (n, n)), d=rng.integers(0, d_max + 1, (n, n)),
                   w_rec=rng.integers(-40, 40, (n, n)), d_rec=rng.integers(1, d_max + 1, (n, n)),
                   threshold=30, reset="subtract")
    out = Layer(name="o", kind="readout", size=3, w_bits=8, v_bits=16, f_bits=4, beta=12,
                d_max=d_max, w=rng.integers(-50, 50, (3, n)), d=rng.integers(0, d_max + 1, (3, n)))
    return Model(n_inputs=n, layers=(hidden, out)).validate()


def test_both_recurrent_paths_are_taken_by_default_on_sparse_and_dense_activity(monkeypatch):
    # Few spikes per step: spike by spike; most units firing with one distinct delay: the
    # dense matmul. Both against the loops.
    model = recurrent_model()
    rng = np.random.default_rng(0)
    for density, expect in ((0.02, "events"), (1.0, "dense")):
        taken = recurrent_paths_taken(monkeypatch)
        spikes = netgen.random_spikes(rng, 4, 20, model.n_inputs, density)
        assert_same(model, spikes)
        assert taken[expect] > 0, (density, taken)


def test_event_path_in_blocks_matches_reference(monkeypatch):
    # EVENT_ENTRIES below one spike's fan-out: every spike is its own block.
    monkeypatch.setattr(golden, "EVENT_ENTRIES", 1)
    recurrent_paths_taken(monkeypatch, force="events")
    for seed in range(20):
        model, spikes = netgen.random_case(seed, netgen.NetParams(max_inputs=8, max_size=8,
                                                                  d_max=(1, 9)), batch=3, steps=14)
        assert_same(model, spikes)


@pytest.mark.parametrize("seed", range(6))
def test_memory_estimate_bounds_the_measured_peak(seed):
    # tracemalloc sees numpy's buffers: the estimate checked before allocating must cover
    # everything the run then holds at once (inputs included).
    model, spikes = netgen.random_case(seed, netgen.NetParams(max_inputs=40, max_size=40,
                                                              d_max=(1, 30)), batch=8, steps=60)
    needed = golden.memory_needed(model, *spikes.shape[:2])
    tracemalloc.start()
    golden.run(model, spikes)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= needed, (peak, needed)
