"""Hypothesis strategies for whole networks, drawn value by value so failures shrink."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from delayhw.spec import Layer, Model


def _matrix(draw, shape, lo, hi, density=None):
    """Integers in lo..hi; with ``density``, each entry is kept with that probability (else 0)."""
    values = draw(st.lists(st.integers(lo, hi), min_size=shape[0] * shape[1],
                           max_size=shape[0] * shape[1]))
    w = np.array(values, dtype=np.int64).reshape(shape)
    if density is None:
        return w
    mask = draw(st.lists(st.floats(0, 1, exclude_max=True), min_size=w.size, max_size=w.size))
    return np.where(np.array(mask).reshape(shape) < density, w, 0)


@st.composite
def models(draw, max_inputs=5, max_size=5, max_layers=3, max_d=5, v_bits=(4, 12)):
    n_inputs = draw(st.integers(1, max_inputs))
    n_layers = draw(st.integers(1, max_layers))
    layers, n_prev = [], n_inputs
    for k in range(n_layers):
        last = k == n_layers - 1
        size = draw(st.integers(1, max_size))
        w_bits = draw(st.integers(2, 8))
        vb = draw(st.integers(*v_bits))
        f_bits = draw(st.integers(1, 8))
        recurrent = (not last) and draw(st.booleans())
        d_max = draw(st.integers(1 if recurrent else 0, max_d))
        density = draw(st.sampled_from([0.3, 0.7, 1.0]))
        wlo, whi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
        vmax = (1 << (vb - 1)) - 1
        layers.append(Layer(
            name=f"l{k}", kind="readout" if last else "lif", size=size, w_bits=w_bits,
            v_bits=vb, f_bits=f_bits, beta=draw(st.integers(0, 1 << f_bits)), d_max=d_max,
            w=_matrix(draw, (size, n_prev), wlo, whi, density),
            d=_matrix(draw, (size, n_prev), 0, d_max),
            w_rec=_matrix(draw, (size, size), wlo, whi, density) if recurrent else None,
            d_rec=_matrix(draw, (size, size), 1, d_max) if recurrent else None,
            bias=np.array(draw(st.lists(st.integers(wlo, whi), min_size=size, max_size=size)))
            if draw(st.booleans()) else None,
            threshold=None if last else draw(st.integers(1, min(vmax, 3 * whi))),
            reset=None if last else draw(st.sampled_from(["subtract", "zero"]))))
        n_prev = size
    return Model(n_inputs=n_inputs, layers=tuple(layers)).validate("hypothesis")


@st.composite
def spike_inputs(draw, n_inputs, max_batch=3, max_steps=12):
    batch = draw(st.integers(1, max_batch))
    steps = draw(st.integers(1, max_steps))
    density = draw(st.sampled_from([0.1, 0.4, 0.8]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return (rng.random((batch, steps, n_inputs)) < density).astype(np.uint8)
