"""Quantisation: widths and scales, the integer forward pass used for QAT, and export.

Scheme (one scale per layer, symmetric, no zero point):

- A lif layer's float threshold is 1, so its scale ``S`` is the integer threshold:
  ``threshold = S = max(1, floor(wmax / m))`` with ``wmax = 2**(w_bits-1) - 1`` and ``m`` the
  largest ``|weight|`` (feedforward, recurrent, bias) of the layer. The largest weight then maps
  to at most ``wmax``, and ``W_int = round(W * S)`` (half up, clamped to ``w_bits``).
- A readout's scale is ``wmax / m`` (no threshold to match); scores are ``S * T * logits``.
- ``beta_int = round(beta * 2**f_bits)``.
- ``v_bits`` (unless given): enough for the worst-case membrane, ``threshold +
  max_j sum_i |W_int[j,i]| / (1 - beta_int / 2**f_bits)`` (all synapses active every step),
  between 4 and ``V_BITS_CAP``; the clamp of section 3 is part of the trained arithmetic, so a
  smaller ``v_bits`` stays bit-exact, only less accurate.

:func:`int_forward` computes docs/design.md section 3 exactly, in float64 tensors holding integers
(every value stays far below 2**53), with straight-through gradients: weights through
``round``/``clamp``, the decay through ``floor``, spikes through the surrogate applied to
``(u - threshold) / threshold`` (the float network's ``v - 1``). Delays are the rounded
integer delays and are not trained in this stage. :func:`export_model` writes the same
integers into a :class:`delayhw.Model`, so ``golden.run`` on it equals ``int_forward``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from delayhw.errors import DelayhwError
from delayhw.spec import LIMITS, Layer, LayerKind, Model, Reset, signed_range

from .kernels import round_half_up
from .layers import DelayedLinear, DelayNet, delay_conv, history_window

__all__ = ["LayerQuant", "QuantSpec", "choose_quant", "int_forward", "IntOutput",
           "export_model", "V_BITS_CAP"]

V_BITS_CAP = 24


@dataclass(frozen=True)
class LayerQuant:
    """Integer parameters of one layer; ``scale`` is integer units per float unit."""

    scale: float
    w_bits: int
    v_bits: int
    f_bits: int
    beta: int
    threshold: int | None

    @property
    def w_range(self) -> tuple[int, int]:
        return signed_range(self.w_bits)

    @property
    def v_range(self) -> tuple[int, int]:
        return signed_range(self.v_bits)


@dataclass(frozen=True)
class QuantSpec:
    layers: tuple[LayerQuant, ...]

    def describe(self) -> list[dict]:
        return [asdict(q) for q in self.layers]


def _check_width(name: str, value: int | None) -> None:
    lo, hi = LIMITS[name]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or not lo <= value <= hi):
        raise DelayhwError(f"quantisation: {name}: must be an integer in {lo}..{hi} "
                           f"(docs/design.md section 3), got {value!r}")


def _layer_weights(layer) -> list[torch.Tensor]:
    ws = [layer.ff.weight]
    if layer.rec is not None:
        ws.append(layer.rec.weight)
    if layer.ff.bias is not None:
        ws.append(layer.ff.bias)
    return [w.detach() for w in ws]


def choose_quant(net: DelayNet, w_bits: int = 8, f_bits: int = 8,
                 v_bits: int | None = None) -> QuantSpec:
    """Pick scales and widths for ``net``'s current float weights (see module docstring)."""
    for name, value in (("w_bits", w_bits), ("f_bits", f_bits), ("v_bits", v_bits)):
        _check_width(name, value)
    wmax = signed_range(w_bits)[1]
    out = []
    for layer in net.layers:
        m = max(float(w.abs().max()) for w in _layer_weights(layer)) or 1.0
        beta = min(1 << f_bits, max(0, math.floor(layer.beta * (1 << f_bits) + 0.5)))
        if layer.kind is LayerKind.LIF:
            threshold = max(1, int(wmax // m))
            if v_bits is not None:
                threshold = min(threshold, signed_range(v_bits)[1])
            scale = float(threshold)
        else:
            threshold, scale = None, wmax / m
        vb = v_bits
        if vb is None:
            row = sum(_quantize(w, scale, w_bits).abs().reshape(w.shape[0], -1).sum(1)
                      for w in _layer_weights(layer))
            worst = float(row.max())
            gain = 1.0 / (1.0 - beta / (1 << f_bits)) if beta < (1 << f_bits) else float(1 << 30)
            need = int(min(worst * gain + (threshold or 0), float(1 << 40)))
            vb = min(V_BITS_CAP, max(4, need.bit_length() + 1))
        out.append(LayerQuant(scale, w_bits, vb, f_bits, beta, threshold))
    return QuantSpec(tuple(out))


# ----------------------------------------------------------------------------- integer ops


def _quantize(w: torch.Tensor, scale: float, w_bits: int) -> torch.Tensor:
    """``clamp(round_half_up(w * scale))`` forward, identity-times-scale backward (STE)."""
    lo, hi = signed_range(w_bits)
    x = w.to(torch.float64) * scale
    return x + (round_half_up(x).clamp(lo, hi) - x).detach()


def _decay(v: torch.Tensor, beta: int, f_bits: int) -> torch.Tensor:
    """``(v * beta + 2**(f_bits-1)) >> f_bits`` forward; gradient ``beta / 2**f_bits``."""
    x = v * (beta / (1 << f_bits))
    exact = torch.floor((v * beta + (1 << (f_bits - 1))) / (1 << f_bits))
    return x + (exact - x).detach()


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _one_hot_taps(w_int: torch.Tensor, d: torch.Tensor, d_min: int, d_max: int) -> torch.Tensor:
    """``(n_out, n_in, d_max - d_min + 1)`` with ``w_int[j, i]`` in bin ``d[j, i] - d_min``."""
    hot = F.one_hot(d - d_min, d_max - d_min + 1).to(w_int.dtype)
    return w_int.unsqueeze(-1) * hot


def quantized(lin: DelayedLinear, q: LayerQuant) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Integer weights and bias (float64 tensors with STE gradients) of one connection."""
    w = _quantize(lin.weight, q.scale, q.w_bits)
    b = None if lin.bias is None else _quantize(lin.bias, q.scale, q.w_bits)
    return w, b


@dataclass
class IntOutput:
    """``scores`` ``(B, C)`` and ``spikes`` (per lif layer ``(B, T, N)``), float64 tensors
    holding the exact integers of section 3; ``logits = scores / (S_out * T)``."""

    scores: torch.Tensor
    spikes: list[torch.Tensor]
    logits: torch.Tensor


def int_forward(net: DelayNet, x: torch.Tensor, spec: QuantSpec) -> IntOutput:
    """The integer network of ``net`` under ``spec`` on spikes ``x`` ``(B, T, n_inputs)``."""
    x = x.to(torch.float64)
    steps = x.shape[1]
    spikes: list[torch.Tensor] = []
    scores = None
    for layer, q in zip(net.layers, spec.layers):
        w, b = quantized(layer.ff, q)
        taps = _one_hot_taps(w, layer.ff.int_delays(), 0, layer.ff.d_max)
        current = _ste_round(delay_conv(x, taps, layer.ff.d_max))
        if b is not None:
            current = current + b
        if layer.kind is LayerKind.LIF:
            x = _int_lif(layer, q, current)
            spikes.append(x)
        else:
            scores = _int_readout(q, current)
    return IntOutput(scores, spikes, scores / (spec.layers[-1].scale * steps))


def _int_lif(layer, q: LayerQuant, current: torch.Tensor) -> torch.Tensor:
    batch, _, n = current.shape
    vlo, vhi = q.v_range
    theta = float(q.threshold)
    rec = layer.rec
    if rec is not None:
        w_rec, _ = quantized(rec, q)
        taps = _one_hot_taps(w_rec, rec.int_delays(), 1, rec.d_max)
        w_rec = taps.reshape(n, n * rec.n_bins)
        zero = current.new_zeros(batch, n)
    v = current.new_zeros(batch, n)
    out: list[torch.Tensor] = []
    for t, i_t in enumerate(current.unbind(1)):
        if rec is not None:
            i_t = i_t + _ste_round(history_window(out, t, 1, rec.n_bins, zero) @ w_rec.T)
        u = torch.clamp(_decay(v, q.beta, q.f_bits) + i_t, vlo, vhi)
        s = layer.spike_fn((u - theta) / theta)
        r = s.detach() if layer.detach_reset else s
        v = u - theta * r if layer.reset == Reset.SUBTRACT else u * (1.0 - r)
        out.append(s)
    return torch.stack(out, dim=1)


def _int_readout(q: LayerQuant, current: torch.Tensor) -> torch.Tensor:
    vlo, vhi = q.v_range
    v = current.new_zeros(current.shape[0], current.shape[2])
    scores = torch.zeros_like(v)
    for i_t in current.unbind(1):
        v = torch.clamp(_decay(v, q.beta, q.f_bits) + i_t, vlo, vhi)
        scores = scores + v
    return scores


# ----------------------------------------------------------------------------- export


def _ints(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().round().to(torch.int64).numpy()


def export_model(net: DelayNet, spec: QuantSpec, train: dict | None = None) -> Model:
    """The integer model of ``net`` under ``spec`` (validated). Delays are the rounded
    (half up) integer delays; a synapse whose weight quantises to 0 is absent and gets the
    smallest delay; each layer's ``d_max`` is the largest delay it uses (at least 1 when
    recurrent)."""
    layers = []
    hidden = 0
    for k, (layer, q) in enumerate(zip(net.layers, spec.layers)):
        w, b = quantized(layer.ff, q)
        w, d = _ints(w), layer.ff.int_delays().cpu().numpy()
        d = np.where(w != 0, d, 0)
        w_rec = d_rec = None
        if layer.rec is not None:
            wr, _ = quantized(layer.rec, q)
            w_rec, d_rec = _ints(wr), layer.rec.int_delays().cpu().numpy()
            d_rec = np.where(w_rec != 0, d_rec, 1)
        d_max = max([int(d.max())] + ([int(d_rec.max()), 1] if d_rec is not None else []))
        lif = layer.kind is LayerKind.LIF
        layers.append(Layer(
            name=f"hidden{hidden}" if lif else "out", kind=layer.kind, size=layer.size,
            w_bits=q.w_bits, v_bits=q.v_bits, f_bits=q.f_bits, beta=q.beta, d_max=d_max,
            w=w, d=d.astype(np.int64), w_rec=w_rec,
            d_rec=None if d_rec is None else d_rec.astype(np.int64),
            bias=None if b is None else _ints(b), threshold=q.threshold if lif else None,
            reset=layer.reset if lif else None))
        hidden += lif
    meta = {"scales": [q.scale for q in spec.layers],
            "float_beta": [float(layer.beta) for layer in net.layers]}
    meta.update(train or {})
    return Model(n_inputs=net.config.n_inputs, layers=tuple(layers), train=meta).validate(
        "exported model")
