"""Random networks and inputs for tests, regression and benchmarks, plus a small example.

Every generator is a pure function of a ``numpy.random.Generator`` (or a seed) and keyword
parameters, so any case can be reproduced from ``(seed, parameters)``.
"""

from __future__ import annotations

from dataclasses import dataclass, asdict
from typing import Any

import numpy as np

from .spec import RESETS, Layer, LayerKind, LayerShape, Model

__all__ = ["NetParams", "random_plan", "random_contents", "random_model", "random_spikes",
           "random_case", "example_model", "sized_model"]


@dataclass(frozen=True)
class NetParams:
    """Bounds for :func:`random_model`; each drawn value is uniform within its bounds."""

    max_inputs: int = 6
    max_size: int = 6
    max_layers: int = 3
    w_bits: tuple[int, int] = (2, 8)
    v_bits: tuple[int, int] = (4, 12)
    f_bits: tuple[int, int] = (1, 8)
    d_max: tuple[int, int] = (0, 6)
    p_recurrent: float = 0.5
    p_bias: float = 0.5
    density: tuple[float, float] = (0.3, 1.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _draw(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _sparse(rng: np.random.Generator, shape: tuple[int, ...], lo: int, hi: int,
            density: float) -> np.ndarray:
    w = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    return np.where(rng.random(shape) < density, w, 0)


def random_plan(rng: np.random.Generator,
                params: NetParams = NetParams()) -> tuple[int, list[LayerShape]]:
    """A random network structure: ``n_inputs`` and the shape of every layer."""
    n_inputs = _draw(rng, (1, params.max_inputs))
    n_layers = _draw(rng, (1, params.max_layers))
    shapes, n_prev = [], n_inputs
    for k in range(n_layers):
        last = k == n_layers - 1
        recurrent = bool((not last) and rng.random() < params.p_recurrent)
        d_max = _draw(rng, params.d_max)
        shapes.append(LayerShape(
            kind=LayerKind.READOUT if last else LayerKind.LIF,
            size=_draw(rng, (1, params.max_size)), n_in=n_prev,
            w_bits=_draw(rng, params.w_bits), v_bits=_draw(rng, params.v_bits),
            f_bits=_draw(rng, params.f_bits), d_max=max(d_max, 1) if recurrent else d_max,
            recurrent=recurrent, bias=bool(rng.random() < params.p_bias)))
        n_prev = shapes[-1].size
    return n_inputs, shapes


def random_contents(rng: np.random.Generator, n_inputs: int, shapes: list[LayerShape],
                    density: tuple[float, float] = NetParams.density) -> Model:
    """A valid model of the given structure with random weights, delays, biases, decay
    (including the edges beta = 0 and beta = 2**f_bits), thresholds and resets."""
    layers = []
    for k, s in enumerate(shapes):
        lif = s.kind is LayerKind.LIF
        dens = float(rng.uniform(*density))
        (wlo, whi), vmax = s.w_range, s.v_range[1]
        beta = int(rng.choice([0, 1 << s.f_bits, int(rng.integers(0, (1 << s.f_bits) + 1))]))
        layers.append(Layer(
            name=f"{'hidden' if lif else 'out'}{k}", kind=s.kind, size=s.size, w_bits=s.w_bits,
            v_bits=s.v_bits, f_bits=s.f_bits, beta=beta, d_max=s.d_max,
            w=_sparse(rng, (s.size, s.n_in), wlo, whi, dens),
            d=rng.integers(0, s.d_max + 1, size=(s.size, s.n_in), dtype=np.int64),
            w_rec=_sparse(rng, (s.size, s.size), wlo, whi, dens) if s.recurrent else None,
            d_rec=rng.integers(1, s.d_max + 1, size=(s.size, s.size), dtype=np.int64)
            if s.recurrent else None,
            bias=rng.integers(wlo, whi + 1, size=s.size, dtype=np.int64) if s.bias else None,
            threshold=int(rng.integers(1, min(vmax, 2 * whi + 1) + 1)) if lif else None,
            reset=str(rng.choice(RESETS)) if lif else None))
    return Model(n_inputs=n_inputs, layers=tuple(layers)).validate("random model")


def random_model(rng: np.random.Generator, params: NetParams = NetParams()) -> Model:
    """A valid random network within ``params``: random depth, sizes, widths, delays,
    recurrence, bias, resets and decay."""
    return random_contents(rng, *random_plan(rng, params), params.density)


def random_spikes(rng: np.random.Generator, batch: int, steps: int, n_inputs: int,
                  density: float = 0.3) -> np.ndarray:
    """Bernoulli(``density``) input spikes ``(batch, steps, n_inputs)`` uint8."""
    return (rng.random((batch, steps, n_inputs)) < density).astype(np.uint8)


def random_case(seed: int, params: NetParams = NetParams(), batch: int = 2,
                steps: int = 10, shape_seed: int | None = None) -> tuple[Model, np.ndarray]:
    """The reproducible (model, spikes) pair of ``seed``. With ``shape_seed``, the structure
    comes from that seed and only the contents and inputs from ``seed`` (cases that share a
    shape share a simulator build): the unit of ``delayhw regress``."""
    rng = np.random.default_rng(seed)
    if shape_seed is None:
        model = random_model(rng, params)
    else:
        plan = random_plan(np.random.default_rng(shape_seed), params)
        model = random_contents(rng, *plan, params.density)
    density = float(rng.uniform(0.1, 0.6))
    return model, random_spikes(rng, batch, steps, model.n_inputs, density)


def sized_model(n_in: int, hidden: int, out: int, d_max: int, recurrent: bool,
                seed: int = 0) -> Model:
    """A dense ``n_in -> hidden [recurrent] lif -> out`` readout network of 8-bit weights,
    uniform delays in ``0..d_max`` (``1..d_max`` recurrent): the benchmarks' model of a given
    size (``bench/gateware.py``, ``bench/fmax.py``; ``sized_model(64, 64, 10, 16, True)`` is
    their medium model)."""
    rng = np.random.default_rng(seed)
    h = Layer(name="h", kind=LayerKind.LIF, size=hidden, w_bits=8, v_bits=16, f_bits=8, beta=240,
              d_max=d_max, w=rng.integers(-40, 80, (hidden, n_in)),
              d=rng.integers(0, d_max + 1, (hidden, n_in)),
              w_rec=rng.integers(-30, 30, (hidden, hidden)) if recurrent else None,
              d_rec=rng.integers(1, d_max + 1, (hidden, hidden)) if recurrent else None,
              threshold=200, reset="subtract")
    o = Layer(name="o", kind=LayerKind.READOUT, size=out, w_bits=8, v_bits=20, f_bits=8, beta=250,
              d_max=d_max, w=rng.integers(-60, 60, (out, hidden)),
              d=rng.integers(0, d_max + 1, (out, hidden)))
    return Model(n_inputs=n_in, layers=(h, o)).validate()


def example_model(seed: int = 1) -> Model:
    """A small hand-shaped network with realistic sparsity and delays: 16 inputs, a recurrent
    lif layer of 12 units (d_max 8), a readout of 4. Used by the demo before training."""
    rng = np.random.default_rng(seed)
    hidden = Layer(
        name="hidden", kind=LayerKind.LIF, size=12, w_bits=6, v_bits=12, f_bits=4, beta=14, d_max=8,
        w=_sparse(rng, (12, 16), -12, 31, 0.35), d=rng.integers(0, 9, size=(12, 16)),
        w_rec=_sparse(rng, (12, 12), -16, 16, 0.2), d_rec=rng.integers(1, 9, size=(12, 12)),
        bias=rng.integers(-2, 3, size=12), threshold=40, reset="subtract")
    out = Layer(
        name="out", kind=LayerKind.READOUT, size=4, w_bits=6, v_bits=14, f_bits=4, beta=15, d_max=4,
        w=_sparse(rng, (4, 12), -31, 31, 0.6), d=rng.integers(0, 5, size=(4, 12)))
    return Model(n_inputs=16, layers=(hidden, out)).validate("example model")
