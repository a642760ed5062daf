"""The integer network model of docs/design.md section 3: layer specs, validation, derived widths.

A :class:`Model` is plain data (ints and int64 numpy arrays). :meth:`Model.validate` checks
every rule of the contract and raises :class:`~delayhw.DelayhwError` naming the source, the
field and the rule. Everything downstream (golden model, gateware, trainer export) may assume
a validated model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Sequence

import numpy as np

from .errors import DelayhwError

__all__ = ["Layer", "LayerKind", "LayerShape", "Model", "LIMITS", "KINDS", "Reset", "RESETS",
           "check_layer_params", "check_int", "check_kind", "array_shapes"]


class LayerKind(StrEnum):
    """What a layer is (docs/design.md section 3). The value is the model file's string; a
    :class:`Layer` or :class:`LayerShape` made with the string holds the member (so it still
    compares equal to the string)."""
    LIF = "lif"              #: spiking units, every layer but the last
    READOUT = "readout"      #: the last layer: non-spiking units whose membranes are summed


KINDS = tuple(k.value for k in LayerKind)


def _as_kind(obj) -> None:
    """Make a frozen dataclass's ``kind`` a :class:`LayerKind` if it names one (anything
    else is left for validation to report)."""
    if not isinstance(obj.kind, LayerKind) and obj.kind in KINDS:
        object.__setattr__(obj, "kind", LayerKind(obj.kind))


class Reset(StrEnum):
    """What a lif unit's membrane becomes when it spikes (docs/design.md section 3). The value is
    the model file's string; :attr:`zero_bit` is the hardware's one-bit code (configuration
    parameter ``RESET``, ``LifUnit.reset_zero``). The one definition of the reset mode: the
    golden model, the trainer, the gateware and the CLI all use it."""
    SUBTRACT = "subtract"    #: v = u - threshold
    ZERO = "zero"            #: v = 0

    @property
    def zero_bit(self) -> int:
        return int(self is Reset.ZERO)


RESETS = tuple(r.value for r in Reset)

#: Supported ranges (inclusive) of the scalar parameters, docs/design.md section 3.
LIMITS = {
    "w_bits": (2, 16),
    "v_bits": (4, 32),
    "f_bits": (1, 16),
    "d_max": (0, 255),
    "size": (1, 65535),
    "n_inputs": (1, 65535),
}


def signed_range(bits: int) -> tuple[int, int]:
    """Inclusive range of a two's complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def bits_for(n: int) -> int:
    """Bits of an unsigned integer holding 0..n (at least 1)."""
    return max(1, int(n).bit_length())


def accumulator_bits(w_bits: int, fan_in: int) -> int:
    """Signed width that holds any sum of ``fan_in`` signed ``w_bits`` weights exactly
    (section 3: ``w_bits + ceil(log2(fan_in + 1)) + 1``)."""
    return w_bits + math.ceil(math.log2(fan_in + 1)) + 1


@dataclass(frozen=True)
class LayerShape:
    """The structure of a layer, without contents: what fixes its hardware."""

    kind: LayerKind
    size: int
    n_in: int
    w_bits: int
    v_bits: int
    f_bits: int
    d_max: int
    recurrent: bool
    bias: bool

    def __post_init__(self):
        _as_kind(self)

    @property
    def fan_in(self) -> int:
        """Synapses per unit: feedforward plus recurrent."""
        return self.n_in + (self.size if self.recurrent else 0)

    @property
    def acc_bits(self) -> int:
        """Signed accumulator width that holds any synaptic current ``I`` exactly."""
        return accumulator_bits(self.w_bits, self.fan_in)

    @property
    def d_bits(self) -> int:
        """Unsigned width of a delay (0..d_max)."""
        return bits_for(self.d_max)

    @property
    def v_range(self) -> tuple[int, int]:
        return signed_range(self.v_bits)

    @property
    def w_range(self) -> tuple[int, int]:
        return signed_range(self.w_bits)

    def groups(self, lanes: int) -> int:
        """Unit groups of a core with ``lanes`` lanes (lane l of group g is unit g*lanes+l)."""
        return -(-self.size // lanes)


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer. ``w``/``d`` are ``(size, n_in)``; ``w_rec``/``d_rec`` are ``(size, size)``
    or None; ``bias`` is ``(size,)`` or None. ``threshold``/``reset`` are None for readout."""

    name: str
    kind: LayerKind
    size: int
    w_bits: int
    v_bits: int
    f_bits: int
    beta: int
    d_max: int
    w: np.ndarray
    d: np.ndarray
    w_rec: np.ndarray | None = None
    d_rec: np.ndarray | None = None
    bias: np.ndarray | None = None
    threshold: int | None = None
    reset: str | None = None

    def __post_init__(self):
        _as_kind(self)

    @property
    def recurrent(self) -> bool:
        return self.w_rec is not None

    @property
    def has_bias(self) -> bool:
        return self.bias is not None

    @property
    def n_in(self) -> int:
        """Feedforward inputs per unit (size of the previous layer or ``n_inputs``)."""
        return int(self.w.shape[1])

    @property
    def shape(self) -> LayerShape:
        return LayerShape(kind=self.kind, size=self.size, n_in=self.n_in, w_bits=self.w_bits,
                          v_bits=self.v_bits, f_bits=self.f_bits, d_max=self.d_max,
                          recurrent=self.recurrent, bias=self.has_bias)

    @property
    def fan_in(self) -> int:
        return self.shape.fan_in

    @property
    def acc_bits(self) -> int:
        return self.shape.acc_bits

    @property
    def v_range(self) -> tuple[int, int]:
        return self.shape.v_range

    @property
    def w_range(self) -> tuple[int, int]:
        return self.shape.w_range

    def describe(self) -> dict[str, Any]:
        """The layer's entry in the model file's ``meta`` JSON."""
        out: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "size": self.size,
            "w_bits": self.w_bits, "v_bits": self.v_bits, "f_bits": self.f_bits,
            "beta": self.beta, "d_max": self.d_max,
            "recurrent": self.recurrent, "bias": self.has_bias,
        }
        if self.kind is LayerKind.LIF:
            out["threshold"] = self.threshold
            out["reset"] = self.reset
        return out

    def arrays(self, k: int) -> dict[str, np.ndarray]:
        """The layer's arrays under their model-file names ``l{k}.*``."""
        out = {f"l{k}.w": self.w, f"l{k}.d": self.d}
        if self.recurrent:
            out[f"l{k}.w_rec"] = self.w_rec
            out[f"l{k}.d_rec"] = self.d_rec
        if self.has_bias:
            out[f"l{k}.bias"] = self.bias
        return out


@dataclass(frozen=True, eq=False)
class Model:
    """A whole network: ``n_inputs`` channels feeding ``layers`` (lif..., readout).

    ``train`` holds optional trainer metadata (stored under ``"train"`` in ``meta``).
    """

    n_inputs: int
    layers: tuple[Layer, ...]
    train: dict[str, Any] | None = field(default=None)

    @property
    def lif_layers(self) -> list[int]:
        """Indices of the spiking layers (all but the last)."""
        return [k for k, layer in enumerate(self.layers) if layer.kind is LayerKind.LIF]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].size

    def with_layers(self, layers: Sequence[Layer]) -> "Model":
        return replace(self, layers=tuple(layers))

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": "delayhw-model", "version": 1, "n_inputs": self.n_inputs,
            "layers": [layer.describe() for layer in self.layers],
        }
        if self.train is not None:
            out["train"] = self.train
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k, layer in enumerate(self.layers):
            out.update(layer.arrays(k))
        return out

    def validate(self, source: str = "model") -> "Model":
        """Check every rule of the contract; return self, or raise DelayhwError."""
        _validate_model(self, source)
        return self


# ----------------------------------------------------------------------------- validation


def _fail(source: str, fld: str, rule: str) -> None:
    raise DelayhwError(f"{source}: {fld}: {rule}")


def check_int(source: str, fld: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        _fail(source, fld, f"must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        _fail(source, fld, f"must be in {lo}..{hi}, got {int(value)}")


def _check_array(source: str, fld: str, arr: Any, shape: tuple[int, ...],
                 lo: int, hi: int, what: str) -> None:
    if not isinstance(arr, np.ndarray):
        _fail(source, fld, "must be a numpy array")
    if arr.dtype.kind not in "iu":
        _fail(source, fld, f"must have an integer dtype, got {arr.dtype}")
    if arr.shape != shape:
        _fail(source, fld, f"must have shape {shape}, got {arr.shape}")
    if arr.size == 0:
        return
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        idx = tuple(int(x) for x in np.argwhere(bad)[0])
        _fail(source, fld, f"{what} must be in {lo}..{hi}, got {int(arr[idx])} at index {idx}")


def check_kind(source: str, k: int, kind: Any, last: bool) -> None:
    """Layer ``k``'s kind: one of KINDS, ``lif`` for layers 0..L-2 and ``readout`` last."""
    if kind not in KINDS:
        _fail(source, f"layers[{k}].kind", f"must be one of {KINDS}, got {kind!r}")
    if kind != (LayerKind.READOUT if last else LayerKind.LIF):
        _fail(source, f"layers[{k}].kind", f"layers 0..L-2 must be 'lif' and the last "
                                           f"'readout'; layer {k} of "
                                           f"{'the last' if last else 'a hidden'} position "
                                           f"is {str(kind)!r}")


def check_layer_params(source: str, k: int, params: dict[str, Any], last: bool) -> None:
    """Check a layer's scalar parameters (``kind``, ``size``, widths, ``beta``, ``d_max``,
    ``threshold``, ``reset``, ``recurrent``, ``bias``) before any array is looked at. The one
    implementation behind :meth:`Model.validate` and the model-file loader (which calls it on
    ``meta`` so that array shapes are known before any array is read)."""
    p = f"layers[{k}]"
    name = params.get("name")
    if not isinstance(name, str) or not name:
        _fail(source, f"{p}.name", f"must be a non-empty string, got {name!r}")
    kind = params.get("kind")
    check_kind(source, k, kind, last)
    for fld in ("recurrent", "bias"):
        if not isinstance(params.get(fld), bool):
            _fail(source, f"{p}.{fld}", f"must be true or false, got {params.get(fld)!r}")
    for fld in ("size", "w_bits", "v_bits", "f_bits", "d_max"):
        check_int(source, f"{p}.{fld}", params.get(fld), *LIMITS[fld])
    check_int(source, f"{p}.beta", params.get("beta"), 0, 1 << int(params["f_bits"]))
    if kind == LayerKind.LIF:
        check_int(source, f"{p}.threshold", params.get("threshold"), 1,
                   signed_range(int(params["v_bits"]))[1])
        if params.get("reset") not in RESETS:
            _fail(source, f"{p}.reset", f"must be one of {RESETS}, got {params.get('reset')!r}")
    else:
        if params.get("threshold") is not None or params.get("reset") is not None:
            _fail(source, f"{p}", "a readout layer has no threshold or reset")
        if params["recurrent"]:
            _fail(source, f"{p}.recurrent", "only lif layers may be recurrent")
    if params["recurrent"] and params["d_max"] < 1:
        _fail(source, f"{p}.d_max", "a recurrent layer needs d_max >= 1")


def array_shapes(n_prev: int, params: dict[str, Any], k: int) -> dict[str, tuple[int, ...]]:
    """The arrays layer ``k`` needs (model-file names) and their shapes, from its checked
    parameters and the width ``n_prev`` of what feeds it."""
    n = int(params["size"])
    out = {f"l{k}.w": (n, n_prev), f"l{k}.d": (n, n_prev)}
    if params["recurrent"]:
        out[f"l{k}.w_rec"] = out[f"l{k}.d_rec"] = (n, n)
    if params["bias"]:
        out[f"l{k}.bias"] = (n,)
    return out


def _validate_layer(layer: Layer, k: int, n_prev: int, last: bool, source: str) -> None:
    if (layer.w_rec is None) != (layer.d_rec is None):
        _fail(source, f"l{k}.w_rec/l{k}.d_rec", "a recurrent layer needs both w_rec and d_rec")
    params = {"name": layer.name, "kind": layer.kind, "size": layer.size,
              "w_bits": layer.w_bits, "v_bits": layer.v_bits, "f_bits": layer.f_bits,
              "beta": layer.beta, "d_max": layer.d_max, "recurrent": layer.w_rec is not None,
              "bias": layer.bias is not None, "threshold": layer.threshold,
              "reset": layer.reset}
    check_layer_params(source, k, params, last)
    n = layer.size
    wlo, whi = signed_range(layer.w_bits)     # not layer.w_range: w's shape is unchecked yet
    _check_array(source, f"l{k}.w", layer.w, (n, n_prev), wlo, whi,
                 f"weights (signed w_bits={layer.w_bits})")
    _check_array(source, f"l{k}.d", layer.d, (n, n_prev), 0, layer.d_max,
                 f"delays (0..d_max={layer.d_max})")
    if layer.w_rec is not None:
        _check_array(source, f"l{k}.w_rec", layer.w_rec, (n, n), wlo, whi,
                     f"weights (signed w_bits={layer.w_bits})")
        _check_array(source, f"l{k}.d_rec", layer.d_rec, (n, n), 1, layer.d_max,
                     f"recurrent delays (1..d_max={layer.d_max}; a recurrent delay of 0 is invalid)")
    if layer.bias is not None:
        _check_array(source, f"l{k}.bias", layer.bias, (n,), wlo, whi,
                     f"bias (signed w_bits={layer.w_bits})")


def _validate_model(model: Model, source: str) -> None:
    if not isinstance(model, Model):
        _fail(source, "model", f"must be a delayhw.Model, got {type(model).__name__}")
    check_int(source, "n_inputs", model.n_inputs, *LIMITS["n_inputs"])
    if not isinstance(model.layers, (tuple, list)):
        _fail(source, "layers", "must be a tuple of delayhw.Layer")
    if len(model.layers) < 1:
        _fail(source, "layers", "a model needs at least one layer")
    names = [layer.name for layer in model.layers]
    for k, layer in enumerate(model.layers):
        if not isinstance(layer, Layer):
            _fail(source, f"layers[{k}]", "must be a delayhw.spec.Layer")
        n_prev = model.n_inputs if k == 0 else int(model.layers[k - 1].size)
        _validate_layer(layer, k, n_prev, k == len(model.layers) - 1, source)
        if layer.name in names[:k]:
            _fail(source, f"layers[{k}].name", f"layer names must be unique, {layer.name!r} repeats")
    if model.train is not None and not isinstance(model.train, dict):
        _fail(source, "train", "must be a JSON object")
