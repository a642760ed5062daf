"""The golden model's memory rule (issue 13 item 5): its peak grows with the model's own
integer storage and the batch, not with the number of distinct delays. Measured with
tracemalloc (numpy reports its buffers to it) as a ratio between two models of the same
size run in the same process, one using 2 distinct delays and one using 200; the block
budget (golden.STACK_BYTES) is lowered so a model this small takes the bounded path."""

import dataclasses
import tracemalloc

import numpy as np

from delayhw import golden, netgen
from delayhw.spec import LayerShape

N = 160


def model_with_delays(distinct: int):
    shapes = [LayerShape("lif", N, N, 8, 16, 8, 255, True, False),
              LayerShape("readout", 4, N, 8, 16, 8, 255, False, False)]
    model = netgen.random_contents(np.random.default_rng(0), N, shapes, density=(1.0, 1.0))
    rng = np.random.default_rng(1)
    hidden = model.layers[0]
    hidden = dataclasses.replace(
        hidden, d=rng.integers(0, distinct, hidden.d.shape),
        d_rec=rng.integers(1, distinct + 1, hidden.d_rec.shape))
    return dataclasses.replace(model, layers=(hidden, model.layers[1]))


def peak_bytes(model, spikes) -> int:
    tracemalloc.start()
    golden.run(model, spikes)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_peak_memory_does_not_grow_with_the_number_of_distinct_delays(monkeypatch):
    block = N * N * 4                          # one float32 delay block of the hidden layer
    monkeypatch.setattr(golden, "STACK_BYTES", 4 * block)
    few, many = model_with_delays(2), model_with_delays(200)
    assert len(np.unique(many.layers[0].d)) == 200
    spikes = netgen.random_spikes(np.random.default_rng(2), 2, 20, N, 0.2)
    storage = sum(a.nbytes for a in (few.layers[0].w, few.layers[0].d, few.layers[0].w_rec,
                                     few.layers[0].d_rec))
    peak_few, peak_many = peak_bytes(few, spikes), peak_bytes(many, spikes)
    # a block per distinct delay would be 200 blocks (20 MB) at once, 25 x the model's storage
    assert peak_many < 2 * peak_few, (peak_few, peak_many)
    assert peak_many < 4 * storage, (peak_many, storage)
