"""Differentiable delays: spreading a real-valued delay over integer delay bins.

A synapse with real delay ``p`` contributes ``K(k; p)`` of its weight to integer delay bin
``k``; the forward pass then uses only integer delays, and the gradient of the loss reaches
``p`` through ``dK/dp``. Three kernels, selectable by name (docs/design.md section 7):

- ``linear``: interpolation between the two nearest bins, ``K = relu(1 - |k - p|)``.
  Width fixed at one bin.
- ``triangle``: ``K = relu(1 - |k - p| / w)``, normalised over the bins; the half-width ``w``
  shrinks linearly from ``max(1, span / 2)`` to 1 bin (where it equals ``linear``).
- ``gaussian``: ``K = exp(-((k - p) / sigma)**2 / 2)``, normalised over the bins; ``sigma``
  decays linearly from ``max(0.5, span / 2)`` to 0.5 bin (as in Hammouamri et al., DCLS).

Schedule: the width moves linearly to its final value over the first ``SCHEDULE_END`` (a
quarter, as in the DCLS recipe) of the float training, then stays there. The second half
(from ``STRAIGHT_THROUGH_FROM``) trains with *straight-through rounded* delays: the
forward pass uses the one-hot kernel at ``round(p)`` (exactly what the hardware will do), the
backward pass the final kernel's gradient, so delays can still move while the network adapts
to integer delays. At the end delays are rounded (half up, never truncated) and frozen, and
every kernel becomes the one-hot ``hard`` kernel (``linear`` at an integer position).
"""

from __future__ import annotations

import math

import torch

__all__ = ["KERNELS", "SCHEDULE_END", "DelayKernel", "spread", "round_half_up"]

KERNELS = ("linear", "triangle", "gaussian")
#: Fraction of float training after which the kernel width stays at its final value (the DCLS
#: recipe's first quarter).
SCHEDULE_END = 0.25
#: Fraction of float training from which delays are rounded straight-through.
STRAIGHT_THROUGH_FROM = 0.5
_FINAL = {"linear": 1.0, "triangle": 1.0, "gaussian": 0.5}
#: gaussian kernel values below this are 0: exp(-40), far above float32's smallest normal
#: (1.2e-38), so neither the kernel nor products with it become subnormal
GAUSSIAN_FLOOR = math.exp(-40.0)


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer, halves up (``floor(x + 0.5)``); never truncates."""
    return torch.floor(x + 0.5)


def spread(p: torch.Tensor, bins: torch.Tensor, kind: str, width: float) -> torch.Tensor:
    """Weights of delay positions ``p`` (any shape) over ``bins`` (1-D, consecutive integers):
    returns ``p.shape + (len(bins),)``. ``p`` must lie within ``[bins[0], bins[-1]]``.
    ``linear`` and ``hard`` ignore ``width``; ``triangle`` and ``gaussian`` are normalised to
    sum to 1 over the bins."""
    x = bins.to(p.dtype) - p.unsqueeze(-1)
    if kind in ("linear", "hard"):
        return torch.relu(1.0 - x.abs())
    if kind == "triangle":
        k = torch.relu(1.0 - x.abs() / width)
    elif kind == "gaussian":
        # the exponent is clamped first: exp's underflow path is ~50x slower on CPU, and
        # every clamped value (exp(-50)) is below the floor anyway
        k = torch.exp((-0.5 * (x / width) ** 2).clamp(min=-50.0))
        # bins more than ~9 widths away: exactly 0, not subnormal (the tail underflows into
        # subnormal floats, whose arithmetic made every later product ~6x slower on CPU)
        k = torch.where(k < GAUSSIAN_FLOOR, 0.0, k)
    else:
        raise ValueError(f"delay kernel must be one of {KERNELS}, got {kind!r}")
    return k / k.sum(-1, keepdim=True)


class _StraightThrough(torch.autograd.Function):
    """Forward ``hard``, backward the whole gradient to ``soft``."""

    @staticmethod
    def forward(ctx, soft, hard):
        return hard

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _GaussianTaps(torch.autograd.Function):
    """``weight[..., None] * spread(p, bins, "gaussian", width)`` (the one-hot kernel at
    ``round(p)`` forward when ``straight_through``, the gaussian's gradient backward) as one
    node with a hand-written backward. With ``K = e / sum(e)``, ``e = exp(-x**2 / 2 w**2)``,
    ``x = bins - p``: ``dK_m/dp = K_m (x_m - sum_n K_n x_n) / w**2`` (floored bins: 0)."""

    @staticmethod
    def forward(ctx, weight, p, bins, width, straight_through):
        x = bins - p.unsqueeze(-1)
        # spread(p, bins, "gaussian", width) in place, in as few operations as it allows
        soft = x.square().mul_(-0.5 / width ** 2).clamp_(min=-50.0).exp_()
        soft.masked_fill_(soft < GAUSSIAN_FLOOR, 0.0)
        soft.div_(soft.sum(-1, keepdim=True))
        if straight_through:       # the weight scattered into its rounded bin
            index = _rounded_bin(p, bins)
            taps = torch.zeros_like(soft).scatter_(-1, index, weight.unsqueeze(-1))
        else:
            index, taps = None, soft * weight.unsqueeze(-1)
        ctx.save_for_backward(weight, x, soft, index)
        ctx.width = width
        return taps

    @staticmethod
    def backward(ctx, grad):
        weight, x, soft, index = ctx.saved_tensors
        grad_w = grad_p = None
        if ctx.needs_input_grad[0]:
            grad_w = (grad * soft).sum(-1) if index is None else grad.gather(-1, index)[..., 0]
        if ctx.needs_input_grad[1]:
            gk = grad * soft
            mean_x = (soft * x).sum(-1, keepdim=True)
            grad_p = (gk * (x - mean_x)).sum(-1).mul_(weight).div_(ctx.width ** 2)
        return grad_w, grad_p, None, None, None


def _rounded_bin(p: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Index of the bin at ``round_half_up(p)`` (clamped to the bins): ``p.shape + (1,)``."""
    return (round_half_up(p.detach()) - bins[0]).long().clamp_(0, len(bins) - 1).unsqueeze(-1)


def _one_hot(p: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """The one-hot kernel at ``round_half_up(p)`` over ``bins``: ``p.shape + (len(bins),)``."""
    return torch.zeros(p.shape + bins.shape, dtype=p.dtype, device=p.device).scatter_(
        -1, _rounded_bin(p, bins), 1.0)


class DelayKernel:
    """A kernel name plus its width schedule. ``set_progress(f)`` (``f`` in [0, 1], the
    fraction of float training done) moves the width; ``harden()`` switches to one-hot."""

    def __init__(self, kind: str, span: int):
        if kind not in KERNELS:
            raise ValueError(f"delay kernel must be one of {KERNELS}, got {kind!r}")
        self.kind = kind
        self.final = _FINAL[kind]
        self.initial = self.final if kind == "linear" else max(self.final, span / 2.0)
        self.width = self.initial
        self.hard = False
        self.straight_through = False

    def set_progress(self, fraction: float) -> None:
        f = min(1.0, max(0.0, fraction) / SCHEDULE_END)
        self.width = self.initial + (self.final - self.initial) * f
        self.straight_through = fraction >= STRAIGHT_THROUGH_FROM

    def harden(self) -> None:
        self.hard = True

    @property
    def mode(self) -> str:
        return "hard" if self.hard else self.kind

    def __call__(self, p: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        soft = spread(p, bins, self.mode, self.width)
        if not self.straight_through or self.hard:
            return soft
        return _StraightThrough.apply(soft, _one_hot(p, bins))

    def taps(self, weight: torch.Tensor, p: torch.Tensor, bins: torch.Tensor,
             fused: bool = True) -> torch.Tensor:
        """``weight[..., None] * self(p, bins)``; for the gaussian (not hardened) as one node
        with a hand-written backward unless ``fused`` is False (same values and gradients up
        to float rounding)."""
        if fused and self.mode == "gaussian":
            return _GaussianTaps.apply(weight, p, bins.to(p.dtype), self.width,
                                       self.straight_through)
        return weight.unsqueeze(-1) * self(p, bins)

    def describe(self) -> dict:
        return {"kind": self.kind, "initial_width": self.initial, "final_width": self.final,
                "schedule_end": SCHEDULE_END, "width_now": self.width, "hard": self.hard}

    def __repr__(self) -> str:
        return f"DelayKernel({self.kind!r}, width={self.width:.3g}{', hard' if self.hard else ''})"

