"""The float network: delayed linear maps, LIF layers with surrogate gradients, a readout.

Time layout is ``(B, T, channels)`` everywhere, one sample per batch row; every sample keeps
its own membranes and spike history, starting from zero (docs/design.md section 3). The float
dynamics mirror the integer ones with the threshold as the unit of membrane:

    lif:     v = beta * v + I + bias;  s = H(v - 1);  v -= s (subtract) or v *= 1 - s (zero)
    readout: v = beta * v + I + bias;  logits = mean_t v

with ``I[t, j] = sum_i W[j,i] * sum_k K(k; D[j,i]) * x[t - k, i]`` (``K`` from
:mod:`.kernels`). The code is device-agnostic (tensors follow the parameters' device).

Two implementations compute the same functions (equal up to float rounding; tested against
each other in float64): the fast path used for training (:func:`delay_matmul`, the whole-sequence
:func:`lif_scan` and :func:`leaky_trace`, each with a hand-written backward) and the
reference path (:func:`delay_conv` on full taps, plain per-step autograd loops), selected by
:func:`reference_path`. The integer forward (:mod:`.quant`) always uses :func:`delay_conv`.
"""

from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from delayhw.spec import RESETS, LayerKind, Reset

from .kernels import DelayKernel, round_half_up

__all__ = ["atan_spike", "delay_conv", "delay_matmul", "lif_scan", "leaky_trace",
           "reference_path", "history_window", "DelayedLinear", "LIFLayer", "Readout",
           "NetConfig", "DelayNet"]

_REFERENCE = False


@contextmanager
def reference_path(on: bool = True) -> Iterator[None]:
    """Within the block, layers compute with the reference path (:func:`delay_conv` on full
    taps, per-step autograd loops) instead of the fast one (module docstring)."""
    global _REFERENCE
    before, _REFERENCE = _REFERENCE, on
    try:
        yield
    finally:
        _REFERENCE = before


class _ATanSpike(torch.autograd.Function):
    """Heaviside forward (``x >= 0`` fires), arctan surrogate backward:
    ``dS/dx = alpha / 2 / (1 + (pi / 2 * alpha * x)**2)``."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        return grad * (a / 2) / (1 + (math.pi / 2 * a * x) ** 2), None


def atan_spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Spike function with the arctan surrogate gradient (Fang et al. 2021)."""
    return _ATanSpike.apply(x, alpha)


def delay_conv(x: torch.Tensor, taps: torch.Tensor, d_max: int) -> torch.Tensor:
    """``y[b, t, j] = sum_{i, m} taps[j, i, m] * x[b, t - (d_max - n_bins + 1 + m), i]``:
    ``x`` ``(B, T, n_in)``, ``taps`` ``(n_out, n_in, n_bins)`` whose last bin is delay
    ``d_max`` -> ``(B, T, n_out)``. Causal: inputs before t = 0 are 0."""
    steps = x.shape[1]
    # conv1d is a cross-correlation: tap m of the flipped kernel reads x[t + m - d_max],
    # i.e. delay d_max - m.
    y = F.conv1d(F.pad(x.transpose(1, 2), (d_max, 0)), taps.flip(-1))
    return y[:, :, :steps].transpose(1, 2)


def _diagonal_sum(z: torch.Tensor, offset: int, steps: int) -> torch.Tensor:
    """``out[b, t, ...] = sum_m z[b, t + offset + m, m, ...]`` (0 where ``t + offset + m``
    is past the end of ``z``): ``z`` ``(B, T', K, n)`` -> ``(B, steps, n)``."""
    batch, _, n_bins, n = z.shape
    zp = F.pad(z, (0, 0, 0, 0, 0, max(0, steps + offset + n_bins - 1 - z.shape[1])))
    s = zp.stride()
    return zp.as_strided((batch, steps, n_bins, n), (s[0], s[1], s[1] + s[2], s[3]),
                         zp.storage_offset() + offset * s[1]).sum(2)


class _DelayMatmul(torch.autograd.Function):
    """:func:`delay_matmul` with a hand-written backward. One dense matrix product per pass
    instead of a convolution; ``unfold`` names what is unfolded over the delay bins: the input
    (``"input"``: ``(B*T, n_bins*n_in)`` windows, cheap when no input gradient is needed) or
    the output (``"output"``: ``x @ taps`` for every bin, then summed along the diagonals; cheap
    when ``n_out`` is small)."""

    @staticmethod
    def forward(ctx, x, taps, d_min, unfold):
        batch, steps, n_in = x.shape
        n_out, _, n_bins = taps.shape
        ctx.d_min, ctx.unfold = d_min, unfold
        if unfold == "input":
            # win[b, t, m', i] = x[b, t - d_max + m', i]: bin n_bins-1-m' (as_strided cannot
            # step backwards, so the windows hold the bins reversed and the taps are flipped)
            # Each window is n_bins consecutive rows of the padded x[b]: one contiguous run
            xp = F.pad(x, (0, 0, d_min + n_bins - 1, 0))
            win = xp.as_strided((batch, steps, n_bins * n_in), (xp.stride(0), n_in, 1),
                                xp.storage_offset()).reshape(batch * steps, n_bins * n_in)
            w = taps.flip(-1).transpose(1, 2).reshape(n_out, n_bins * n_in)
            ctx.save_for_backward(win, taps)
            return (win @ w.t()).view(batch, steps, n_out)
        # Output unfolded, transposed: zT[(m', j), (t, b)] = sum_i taps[j, i, m] x[b, t, i]
        # (m' = n_bins-1-m), each row written after P = d_min + n_bins - 1 zero time steps;
        # then y[j, (t, b)] = sum_m' zT[(m', j), (t + m') * B + b]: contiguous runs of T*B,
        # summed as whole rows. The (t, b) columns take the lif layer's time-major spikes
        # without a copy; y is (n_out, T, B) in memory, a small copy where time-major is needed
        pad = (d_min + n_bins - 1) * batch
        cols = steps * batch
        x_tm = x.transpose(0, 1).reshape(cols, n_in)
        w = taps.flip(-1).permute(2, 0, 1).reshape(n_bins * n_out, n_in)
        zp = x.new_empty(n_bins * n_out, pad + cols)
        zp[:, :pad].zero_()
        torch.mm(w, x_tm.t(), out=zp[:, pad:])
        y = zp.as_strided((n_bins, n_out, cols), (n_out * (pad + cols) + batch, pad + cols, 1))
        ctx.save_for_backward(x_tm, taps)
        return y.sum(0).view(n_out, steps, batch).permute(2, 1, 0)

    @staticmethod
    def backward(ctx, grad):
        saved, taps = ctx.saved_tensors
        n_out, n_in, n_bins = taps.shape
        batch, steps = grad.shape[:2]
        g2 = grad.reshape(batch * steps, n_out)
        grad_x = grad_taps = None
        if ctx.unfold == "input":
            if ctx.needs_input_grad[1]:
                grad_taps = (g2.t() @ saved).view(n_out, n_bins, n_in).transpose(1, 2).flip(-1)
            if ctx.needs_input_grad[0]:
                # d y[b, t] / d x[b, t - d_min - m] = taps[:, :, m]
                gw = (g2 @ taps.transpose(1, 2).reshape(n_out, n_bins * n_in))
                grad_x = _diagonal_sum(gw.view(batch, steps, n_bins, n_in), ctx.d_min, steps)
            return grad_x, grad_taps, None, None
        # transposed as the forward: gT[(j, m), (t, b)] = grad[b, t + d_min + m, j], what
        # x[b, t] received through bin m; rows are contiguous runs of the padded grad
        cols = steps * batch
        gp = grad.new_empty(n_out, (steps + ctx.d_min + n_bins) * batch)
        gp[:, cols:].zero_()
        gp[:, :cols].view(n_out, steps, batch).copy_(grad.permute(2, 1, 0))
        g_t = gp.as_strided((n_out, n_bins, cols), (gp.stride(0), batch, 1),
                            ctx.d_min * batch).reshape(n_out * n_bins, cols)
        if ctx.needs_input_grad[1]:
            grad_taps = (g_t @ saved).view(n_out, n_bins, n_in).transpose(1, 2)
        if ctx.needs_input_grad[0]:
            grad_x = (taps.transpose(1, 2).reshape(n_out * n_bins, n_in).t() @ g_t).view(
                n_in, steps, batch).permute(2, 1, 0)
        return grad_x, grad_taps, None, None


def delay_matmul(x: torch.Tensor, taps: torch.Tensor, d_min: int) -> torch.Tensor:
    """:func:`delay_conv` (with ``d_max = d_min + n_bins - 1``) by dense matrix products,
    choosing per call the form that is cheapest for the shapes (measured on CPU, bench/train.py):
    the unfolded input when ``x`` needs no gradient, the unfolded output when ``n_out`` is
    at most half of ``n_in``, else :func:`delay_conv` itself. Same values up to float
    rounding, gradients to ``x`` and ``taps``."""
    n_out, n_in, n_bins = taps.shape
    if not x.requires_grad:
        unfold = "input"
    elif 2 * n_out <= n_in:
        unfold = "output"
    else:
        return delay_conv(x, taps, d_min + n_bins - 1)
    return _DelayMatmul.apply(x, taps, d_min, unfold)


class DelayedLinear(nn.Module):
    """``y[b, t, j] = sum_i W[j, i] * sum_k K(k; D[j, i]) * x[b, t - k, i] (+ bias[j])``.

    One learnable real delay per synapse, kept in ``[d_min, d_max]`` by :meth:`clamp_`
    (call it after each optimiser step). ``d_min`` is 0 for feedforward and 1 for recurrent
    connections. ``weight`` and ``delay`` have shape ``(n_out, n_in)``.
    """

    def __init__(self, n_in: int, n_out: int, d_max: int, kernel: DelayKernel, *,
                 d_min: int = 0, bias: bool = False, learn_delays: bool = True,
                 gain: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        if not 0 <= d_min <= d_max:
            raise ValueError(f"need 0 <= d_min <= d_max, got {d_min}, {d_max}")
        self.n_in, self.n_out, self.d_min, self.d_max = n_in, n_out, d_min, d_max
        self.kernel = kernel
        w = torch.randn(n_out, n_in, generator=generator) * (gain / math.sqrt(n_in))
        self.weight = nn.Parameter(w)
        if learn_delays:
            d = d_min + torch.rand(n_out, n_in, generator=generator) * (d_max - d_min)
        else:
            d = torch.full((n_out, n_in), float(d_min))
        self.delay = nn.Parameter(d, requires_grad=learn_delays)
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        # float, so that .double()/.to() keep it in the parameters' dtype (no cast per call)
        self.register_buffer("bins", torch.arange(d_min, d_max + 1, dtype=torch.float32),
                             persistent=False)

    @property
    def n_bins(self) -> int:
        return self.d_max - self.d_min + 1

    def taps(self) -> torch.Tensor:
        """Effective weight per integer delay: ``(n_out, n_in, n_bins)``, bin m = delay
        ``d_min + m``."""
        return self.kernel.taps(self.weight, self.delay, self.bins, fused=not _REFERENCE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, n_in)`` -> ``(B, T, n_out)``; causal (spikes before t=0 are 0)."""
        if _REFERENCE:
            y = delay_conv(x, self.taps(), self.d_max)
        else:
            y = delay_matmul(x, self.taps(), self.d_min)
        return y if self.bias is None else y + self.bias

    def window_matrix(self) -> torch.Tensor:
        """Taps flattened to ``(n_out, n_in * n_bins)`` for :meth:`step` windows."""
        return self.taps().reshape(self.n_out, self.n_in * self.n_bins)

    def delay_parameters(self) -> list[nn.Parameter]:
        return [self.delay] if self.delay.requires_grad else []

    @torch.no_grad()
    def clamp_(self) -> None:
        self.delay.clamp_(self.d_min, self.d_max)

    @torch.no_grad()
    def round_delays_(self) -> None:
        """Round delays to integers (half up, never truncated), clamp, freeze them."""
        self.delay.copy_(round_half_up(self.delay).clamp_(self.d_min, self.d_max))
        self.delay.requires_grad_(False)

    def int_delays(self) -> torch.Tensor:
        """The delays as integers (rounded half up and clamped), ``(n_out, n_in)`` int64."""
        return round_half_up(self.delay.detach()).clamp(self.d_min, self.d_max).long()


#: decay factors below this are 0 in :func:`decay_scan` (exp(-40), as the gaussian kernel's
#: floor): products with them would otherwise turn subnormal, which is ~6x slower on CPU
DECAY_FLOOR = math.exp(-40.0)
#: time steps per block of :func:`decay_scan`: one matrix product per block
DECAY_BLOCK = 64


@functools.lru_cache(maxsize=32)
def _decay_matrix(steps: int, beta: float, dtype: torch.dtype, device: torch.device
                  ) -> torch.Tensor:
    """``(steps + 1, steps)``: rows 0..steps-1 the lower-triangular ``beta**(t - s)``
    (``s <= t``), row ``steps`` the carry factors ``beta**(t + 1)``; entries below
    :data:`DECAY_FLOOR` are 0."""
    k = torch.arange(steps, dtype=torch.float64)
    lag = torch.cat([k[:, None] - k[None, :], (k + 1)[None, :]])
    m = torch.where(lag >= 0, beta ** lag.clamp(min=0), 0.0)
    return torch.where(m < DECAY_FLOOR, 0.0, m).to(dtype=dtype, device=device)


def decay_scan(x: torch.Tensor, beta: float, reverse: bool = False) -> torch.Tensor:
    """``y[:, t] = sum_{s <= t} beta**(t - s) * x[:, s]`` for ``x`` ``(B, T, n)`` (``reverse``:
    ``sum_{s >= t} beta**(s - t) * x[:, s]``), i.e. ``y[:, t] = x[:, t] + beta * y[:, t -+ 1]``,
    as one matrix product per :data:`DECAY_BLOCK` steps instead of one operation per step.
    Equal to the loop up to float rounding. Computed time-major (a view, no copy, when ``x``
    is time-major in memory, as the trainer's tensors are); the result is time-major too."""
    batch, steps, n = x.shape
    block = min(steps, DECAY_BLOCK)
    m = _decay_matrix(block, float(beta), x.dtype, x.device)
    lower, carry_factor = m[:block], m[block]          # carry_factor[i] = beta**(i + 1)
    if reverse:                 # the transposed matrix, blocks from the end, carried back
        matrix, carry_factor = lower.t(), carry_factor.flip(0)
        starts = range((steps - 1) // block * block, -1, -block)
    else:
        matrix, starts = lower, range(0, steps, block)
    x_tm = x.transpose(0, 1).reshape(steps, batch * n)
    if steps <= block:
        return (matrix @ x_tm).view(steps, batch, n).transpose(0, 1)
    parts, carry = [], None
    for start in starts:
        c = min(block, steps - start)
        part = matrix[:c, :c] @ x_tm[start:start + c]
        if carry is not None:   # reverse: only the first block taken (the last) is short
            part.addcmul_(carry_factor[:c, None], carry[None, :])
        parts.append(part)
        carry = part[0] if reverse else part[-1]
    out = torch.cat(parts[::-1] if reverse else parts, 0)
    return out.view(steps, batch, n).transpose(0, 1)


def _lif_forward(cur: torch.Tensor, beta: float, subtract: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The LIF time loop on ``cur`` ``(T, B, n)`` contiguous: membranes before reset ``u`` and
    spikes ``s`` (float 0/1), both ``(T, B, n)``. On CPU the loop runs in numpy on the same
    memory (a third of torch's cost per small operation); elsewhere in torch."""
    u_all = torch.empty_like(cur)
    s_all = torch.empty_like(cur)
    if cur.device.type == "cpu" and not _TORCH_LIF_LOOP:
        c, u_np, s_np = cur.numpy(), u_all.numpy(), s_all.numpy()
        v = np.zeros_like(c[0])
        for t in range(c.shape[0]):
            u, s = u_np[t], s_np[t]
            np.multiply(v, beta, out=u)
            u += c[t]                                            # beta * v + I
            np.greater_equal(u, 1.0, out=s, casting="unsafe")    # H(u - 1)
            if subtract:
                np.subtract(u, s, out=v)
            else:
                np.multiply(u, 1.0 - s, out=v)
        return u_all, s_all
    v = torch.zeros_like(cur[0])
    for c, u, s in zip(cur.unbind(0), u_all.unbind(0), s_all.unbind(0)):
        torch.add(c, v, alpha=beta, out=u)                       # beta * v + I
        torch.ge(u, 1.0, out=s)                                  # H(u - 1)
        # subtract: v = u - s; zero: v = u - u * s (= u * (1 - s), exact for s in {0, 1})
        v = u - s if subtract else torch.addcmul(u, u, s, value=-1.0)
    return u_all, s_all


#: tests set this to run :func:`_lif_forward`'s torch loop on CPU too
_TORCH_LIF_LOOP = False


class _LIFScan(torch.autograd.Function):
    """:func:`lif_scan`: the time loop without autograd nodes (:func:`_lif_forward`); the
    backward is :func:`decay_scan` in reverse (subtract reset) or one reverse loop (zero
    reset). Saves the membrane before reset ``u`` (``T, B, n``)."""

    @staticmethod
    def forward(ctx, current, beta, subtract, alpha):
        cur = current.detach().transpose(0, 1).contiguous()     # (T, B, n)
        u_all, s_all = _lif_forward(cur, beta, subtract)
        ctx.save_for_backward(u_all, s_all)
        ctx.beta, ctx.subtract, ctx.alpha = beta, subtract, alpha
        return s_all.transpose(0, 1)                           # (B, T, n), time-major memory

    @staticmethod
    def backward(ctx, grad):
        u_all, s_all = ctx.saved_tensors
        a, beta = ctx.alpha, ctx.beta
        # dS/du, the arctan surrogate of atan_spike at u - 1
        g = grad.transpose(0, 1) * (a / 2) / (1 + (math.pi / 2 * a * (u_all - 1.0)) ** 2)
        if ctx.subtract:           # dv/du = 1 with a detached reset: du[t] = g[t] + beta du[t+1]
            return decay_scan(g.transpose(0, 1), beta, reverse=True), None, None, None
        du = torch.empty_like(g, memory_format=torch.contiguous_format)
        keep = 1.0 - s_all                                     # dv/du with a detached reset
        carry = torch.zeros_like(du[0])                        # dL/du at t + 1
        for t in range(du.shape[0] - 1, -1, -1):
            carry = torch.addcmul(g[t], keep[t], carry, value=beta, out=du[t])
        return du.transpose(0, 1), None, None, None


def lif_scan(current: torch.Tensor, beta: float, reset: str, alpha: float = 2.0) -> torch.Tensor:
    """Spikes ``(B, T, n)`` of LIF neurons driven by ``current`` ``(B, T, n)``, as the
    reference loop of :class:`LIFLayer` with ``spike_fn=atan_spike`` (surrogate ``alpha``)
    and a detached reset: ``u = beta * v + I; s = H(u - 1); v = u - s`` (subtract) or
    ``u * (1 - s)`` (zero). One autograd node for the whole sequence."""
    return _LIFScan.apply(current, beta, reset == Reset.SUBTRACT, alpha)


class _LeakyTrace(torch.autograd.Function):
    """:func:`leaky_trace`: :func:`decay_scan` forward, in reverse backward."""

    @staticmethod
    def forward(ctx, current, beta):
        ctx.beta = beta
        return decay_scan(current, beta)

    @staticmethod
    def backward(ctx, grad):
        return decay_scan(grad, ctx.beta, reverse=True), None


def leaky_trace(current: torch.Tensor, beta: float) -> torch.Tensor:
    """``v[:, t] = beta * v[:, t-1] + current[:, t]`` (``v[:, -1] = 0``) for ``current``
    ``(B, T, n)``, as one autograd node."""
    return _LeakyTrace.apply(current, beta)


def history_window(history: list[torch.Tensor], t: int, d_min: int, n_bins: int,
                   zero: torch.Tensor) -> torch.Tensor:
    """``(B, N * n_bins)`` with entry ``[b, i * n_bins + m] = s[b, t - d_min - m, i]``
    (0 before the first step), from ``history[t'] = s[:, t', :]``."""
    cols = [history[t - d_min - m] if t - d_min - m >= 0 else zero for m in range(n_bins)]
    return torch.stack(cols, dim=-1).flatten(1)


class LIFLayer(nn.Module):
    """Delayed feedforward input, optional recurrent delayed connections (delays
    ``1..d_max``), LIF dynamics with threshold 1 and a surrogate-gradient spike function.
    ``forward(x (B, T, n_in)) -> spikes (B, T, size)``."""

    kind = LayerKind.LIF

    def __init__(self, n_in: int, size: int, d_max: int, kernel: DelayKernel, *,
                 recurrent: bool = False, beta: float = 0.8, reset: str = Reset.SUBTRACT,
                 bias: bool = False, learn_delays: bool = True, spike_fn=atan_spike,
                 detach_reset: bool = True, gain: float = 3.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
        if recurrent and d_max < 1:
            raise ValueError("a recurrent layer needs d_max >= 1")
        self.size, self.beta, self.reset = size, beta, reset
        self.spike_fn, self.detach_reset = spike_fn, detach_reset
        self.ff = DelayedLinear(n_in, size, d_max, kernel, bias=bias, learn_delays=learn_delays,
                                gain=gain, generator=generator)
        self.rec = (DelayedLinear(size, size, d_max, kernel, d_min=1, learn_delays=learn_delays,
                                  gain=gain / 3, generator=generator) if recurrent else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        current = self.ff(x)
        if (not _REFERENCE and self.rec is None and self.spike_fn is atan_spike
                and self.detach_reset):
            return lif_scan(current, self.beta, self.reset)
        batch, _, n = current.shape
        v = current.new_zeros(batch, n)
        spikes: list[torch.Tensor] = []
        if self.rec is not None:
            w_rec, zero = self.rec.window_matrix(), current.new_zeros(batch, n)
        # unbind once: indexing current[:, t] per step would cost a full-size gradient each
        for t, i_t in enumerate(current.unbind(1)):
            if self.rec is not None:
                window = history_window(spikes, t, 1, self.rec.n_bins, zero)
                i_t = i_t + window @ w_rec.T
            v = self.beta * v + i_t
            s = self.spike_fn(v - 1.0)
            r = s.detach() if self.detach_reset else s
            v = v - r if self.reset == Reset.SUBTRACT else v * (1.0 - r)
            spikes.append(s)
        return torch.stack(spikes, dim=1)


class Readout(nn.Module):
    """Delayed feedforward input into leaky integrators that never spike.
    ``forward(x (B, T, n_in)) -> membrane trace (B, T, size)``."""

    kind = LayerKind.READOUT

    def __init__(self, n_in: int, size: int, d_max: int, kernel: DelayKernel, *,
                 beta: float = 0.95, bias: bool = False, learn_delays: bool = True,
                 gain: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.size, self.beta = size, beta
        self.ff = DelayedLinear(n_in, size, d_max, kernel, bias=bias, learn_delays=learn_delays,
                                gain=gain, generator=generator)
        self.rec = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        current = self.ff(x)
        if not _REFERENCE:
            return leaky_trace(current, self.beta)
        v = current.new_zeros(current.shape[0], current.shape[2])
        trace = []
        for i_t in current.unbind(1):
            v = self.beta * v + i_t
            trace.append(v)
        return torch.stack(trace, dim=1)


@dataclass
class NetConfig:
    """Shape and dynamics of a :class:`DelayNet`. ``beta`` is the hidden layers' decay per
    step, ``beta_out`` the readout's; ``d_max`` applies to every connection."""

    n_inputs: int
    n_classes: int
    hidden: tuple[int, ...] = (16,)
    d_max: int = 12
    recurrent: bool = False
    kernel: str = "gaussian"
    beta: float = 0.8
    beta_out: float = 0.95
    reset: str = "subtract"
    bias: bool = False
    learn_delays: bool = True
    seed: int = 0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @staticmethod
    def from_dict(d: dict) -> "NetConfig":
        d = dict(d)
        d["hidden"] = tuple(int(h) for h in d.get("hidden", ()))
        return NetConfig(**d)


class DelayNet(nn.Module):
    """Hidden :class:`LIFLayer` s then a :class:`Readout`, sharing one :class:`DelayKernel`.

    ``forward(x (B, T, n_inputs)) -> (logits (B, n_classes), [spikes (B, T, size)] per lif
    layer)``; ``logits = mean_t v_readout`` (the integer score divided by ``T``).
    """

    def __init__(self, config: NetConfig, spike_fn=atan_spike):
        super().__init__()
        self.config = config
        self.kernel = DelayKernel(config.kernel, config.d_max)
        if not config.learn_delays:
            self.kernel.harden()        # frozen delays are plain integer delays, no spreading
        gen = torch.Generator().manual_seed(config.seed)
        layers: list[nn.Module] = []
        n_prev = config.n_inputs
        for size in config.hidden:
            layers.append(LIFLayer(n_prev, size, config.d_max, self.kernel,
                                   recurrent=config.recurrent, beta=config.beta,
                                   reset=config.reset, bias=config.bias,
                                   learn_delays=config.learn_delays, spike_fn=spike_fn,
                                   generator=gen))
            n_prev = size
        layers.append(Readout(n_prev, config.n_classes, config.d_max, self.kernel,
                              beta=config.beta_out, bias=config.bias,
                              learn_delays=config.learn_delays, generator=gen))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spikes = []
        for layer in self.layers[:-1]:
            x = layer(x)
            spikes.append(x)
        return self.layers[-1](x).mean(dim=1), spikes

    # ------------------------------------------------------------------ delays

    def delay_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules() if m is not self and hasattr(m, "delay_parameters")
                for p in m.delay_parameters()]

    def weight_parameters(self) -> list[nn.Parameter]:
        delays = {id(p) for p in self.delay_parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in delays]

    def set_progress(self, fraction: float) -> None:
        """Move the delay-kernel width schedule to ``fraction`` of float training."""
        self.kernel.set_progress(fraction)

    def clamp_delays_(self) -> None:
        for m in self.modules():
            if hasattr(m, "clamp_") and m is not self:
                m.clamp_()

    def round_delays_(self) -> None:
        """Round every delay to an integer (half up), freeze delays, use one-hot kernels."""
        for m in self.modules():
            if m is not self and hasattr(m, "round_delays_"):
                m.round_delays_()
        self.kernel.harden()
