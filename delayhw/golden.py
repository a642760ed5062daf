"""The bit-exact golden model: what the hardware must compute (docs/design.md section 3).

Vectorised with numpy over the batch and over synapses; the only Python loops run over
layers, distinct delay values and time steps (the membrane recursion is sequential in t).

Recurrence: the recurrent input a step's spikes send into later steps is added spike by
spike (cost ~ spikes x fan-out, exact int64), or as one dense matmul of that step's spikes
against the recurrent delay blocks when the step has so many spikes that this is cheaper.

Memory: the per-delay weight blocks of a layer are prepared once when they fit in
:data:`STACK_BYTES`; a layer with more (many distinct delays on a wide layer) gets them
built a group of delays at a time from a delay-sorted synapse list, and its recurrent part
applied spike by spike only, so the peak grows with the model's synapses and the batch
chunk, not with ``d_max``. :func:`run` checks its estimated peak against the memory budget
(:mod:`delayhw.limits`) before allocating.

Exactness. Synaptic currents are sums of integer weights selected by 0/1 spikes. They are
computed with float BLAS matmuls, which is exact because every partial sum of any subset of a
row's weights is an integer no larger than ``max_j sum_i |W[j,i]|``: float32 is used when that
bound is below 2**24, float64 otherwise (the contract's ranges keep it below 2**32 < 2**53).
Everything after the currents (decay, clamp, threshold, reset, scores) is int64.
"""

from __future__ import annotations

import numpy as np

from .errors import DelayhwError
from .formats import Result, check_spikes
from .limits import check_memory
from .spec import Layer, LayerKind, Model, Reset

__all__ = ["run", "Result", "synaptic_events"]

#: Cap on the temporaries of one batch chunk (bytes); larger batches are processed in chunks.
CHUNK_BYTES = 1 << 28
#: Cap on one layer's prepared per-delay weight blocks (bytes): above it they are built a
#: group of delays at a time (and a recurrent part is applied spike by spike).
STACK_BYTES = 1 << 27


def run(model: Model, spikes: np.ndarray) -> Result:
    """Run ``model`` on ``spikes`` ``(B, T, n_inputs)`` (0/1) and return the :class:`Result`."""
    if not isinstance(model, Model):
        raise DelayhwError(f"golden.run: model: must be a delayhw.Model, got "
                           f"{type(model).__name__}")
    model.validate("golden.run: model")
    spikes = check_spikes("golden.run", spikes, model.n_inputs, nonempty=False)
    batch, steps, _ = spikes.shape
    check_memory("golden.run", "spikes", memory_needed(model, batch, steps),
                 f"running {batch} samples x {steps} steps on this model")
    plans = [_LayerPlan(layer) for layer in model.layers]
    per_sample = max(p.bytes_per_step for p in plans) * (steps + 256)
    chunk = max(1, CHUNK_BYTES // per_sample)
    parts = [_run_chunk(plans, spikes[b:b + chunk]) for b in range(0, max(batch, 1), chunk)]
    scores = np.concatenate([p[0] for p in parts])
    lif = [np.concatenate([p[1][n] for p in parts]) for n in range(len(parts[0][1]))]
    return Result.from_scores(scores, lif)


#: Bytes per synapse the preparation of a layer may hold at once (index and sort arrays).
PREP_BYTES_PER_SYNAPSE = 40
#: Bytes per recurrent synapse of the event tables a recurrent layer keeps (int32 flat
#: offset, int64 weight).
REC_TABLE_BYTES_PER_SYNAPSE = 12


def memory_needed(model: Model, batch: int, steps: int) -> int:
    """Upper estimate of the bytes one run holds at its peak, known before anything is
    allocated: what every layer keeps (weight blocks, at most :data:`STACK_BYTES` each for
    the feedforward and the recurrent part, and the recurrent event tables) plus the largest
    preparation in flight (:data:`PREP_BYTES_PER_SYNAPSE`), the input and every output
    (spikes of each lif layer, scores), and one batch chunk's temporaries (at most one
    sample's when a sample alone exceeds :data:`CHUNK_BYTES`) including the recurrent event
    path's (at most three arrays of :data:`EVENT_ENTRIES` 8-byte entries)."""
    sizes = [layer.size for layer in model.layers]
    outputs = batch * steps * (model.n_inputs + sum(sizes[:-1])) + 8 * batch * sizes[-1]
    kept = preparing = per_step = events = 0
    for layer in model.layers:
        synapses = layer.w.size + (layer.w_rec.size if layer.recurrent else 0)
        kept += min(STACK_BYTES, 8 * layer.w.size * (layer.d_max + 1))
        if layer.recurrent:
            kept += min(STACK_BYTES, 8 * layer.w_rec.size * layer.d_max)
            kept += REC_TABLE_BYTES_PER_SYNAPSE * layer.w_rec.size
            events = max(events, 3 * 8 * min(EVENT_ENTRIES, max(batch, 1) * layer.w_rec.size))
        preparing = max(preparing, synapses * PREP_BYTES_PER_SYNAPSE)
        per_group = max(1, min(layer.d_max + 1, STACK_BYTES // max(1, 4 * layer.w.size)))
        per_step = max(per_step, 8 * layer.size * (per_group + 4) + 8 * layer.n_in)
    per_sample = per_step * (steps + 256)
    chunk_bytes = min(max(batch, 1) * per_sample, max(CHUNK_BYTES, per_sample))
    return kept + preparing + outputs + chunk_bytes + events


def synaptic_events(model: Model, spikes: np.ndarray, result: Result) -> int:
    """Synaptic events the network processed: every presynaptic spike times its fan-out of
    nonzero synapses (feedforward and recurrent). The unit of the golden model's speed."""
    total = 0
    trains = [np.asarray(spikes, dtype=np.int64)] + [s.astype(np.int64) for s in result.spikes]
    for k, layer in enumerate(model.layers):
        fanout = (layer.w != 0).sum(axis=0)
        total += int(trains[k].sum(axis=(0, 1)) @ fanout)
        if layer.recurrent:
            total += int(trains[k + 1].sum(axis=(0, 1)) @ (layer.w_rec != 0).sum(axis=0))
    return total


def _exact_float(*weights: np.ndarray | None) -> type:
    """Smallest float type in which sums of these weights are exact integers."""
    bound = sum(int(np.abs(w).sum(axis=1).max()) for w in weights if w is not None and w.size)
    return np.float32 if bound < (1 << 24) else np.float64


class _DelayBlocks:
    """The synapses of ``w`` (N, n) grouped by delay value ``d``, as dense matrices
    ``(n, g * N)`` whose block ``m`` holds ``w * (d == ks[m])`` transposed, so one matmul
    yields the current of ``g`` delays. When all blocks together fit in :data:`STACK_BYTES`
    they are built once; otherwise they are built a group at a time whenever needed, from a
    delay-sorted list of the nonzero synapses, so memory grows with the synapses, not with
    the number of distinct delays."""

    def __init__(self, w: np.ndarray, d: np.ndarray, ftype: type):
        self.size, self.n_in = w.shape
        self.ftype = ftype
        flat = np.flatnonzero(w)                      # synapse (j, i) as j * n_in + i
        delays = d.ravel()[flat].astype(np.int16)
        order = np.argsort(delays, kind="stable")
        self.delays = delays[order]
        del delays
        flat = flat[order]
        del order
        self.w = w.ravel()[flat].astype(ftype)
        self.j = (flat // self.n_in).astype(np.int32)
        self.i = (flat % self.n_in).astype(np.int32)
        del flat
        self.ks = np.unique(self.delays).astype(np.int64)
        block = max(1, self.n_in * self.size * np.dtype(ftype).itemsize)
        self.per_group = max(1, min(len(self.ks), STACK_BYTES // block))
        self.whole = len(self.ks) <= self.per_group
        if self.whole:               # build once, keep only the matrix
            self.stack = next(self._build())[1]
            del self.j, self.i, self.delays, self.w

    def groups(self):
        """``(delays, matrix)`` for every group of at most ``per_group`` delays."""
        if self.whole:
            yield self.ks, self.stack
        else:
            yield from self._build()

    def _build(self):
        for g in range(0, max(len(self.ks), 1), self.per_group):
            ks = self.ks[g:g + self.per_group]
            matrix = np.zeros((self.n_in, len(ks) * self.size), dtype=self.ftype)
            if len(ks):
                lo = np.searchsorted(self.delays, ks[0], side="left")
                hi = np.searchsorted(self.delays, ks[-1], side="right")
                m = np.searchsorted(ks, self.delays[lo:hi])
                matrix[self.i[lo:hi], m * self.size + self.j[lo:hi]] = self.w[lo:hi]
            yield ks, matrix


class _LayerPlan:
    """Per-layer tables prepared once per run: feedforward delay blocks, the exact float type
    and the recurrent synapses. The recurrent part is applied per step either spike by spike
    (:func:`_add_recurrent_events`, cost ~ spikes x fan-out) or, when its delay blocks fit
    :data:`STACK_BYTES` and the step's spikes are many (:meth:`dense_is_cheaper`), as one
    dense matmul."""

    def __init__(self, layer: Layer):
        self.layer = layer
        self.ftype = _exact_float(layer.w, layer.w_rec)
        self.ff = _DelayBlocks(layer.w, layer.d, self.ftype)
        self.rec_ks, self.rec_stack = np.zeros(0, dtype=np.int64), None
        self.rec_events = False
        if layer.recurrent:
            rec = _DelayBlocks(layer.w_rec, layer.d_rec, self.ftype)
            self.rec_ks = rec.ks
            if rec.whole:
                self.rec_stack = rec.stack
            else:
                self.rec_events = len(rec.ks) > 0
            del rec
            size = layer.size
            #: per source unit i: flat offset d_rec[j,i] * size + j of each target, its weight
            self.rec_offsets = (layer.d_rec.T.astype(np.int32) * size
                                + np.arange(size, dtype=np.int32)[None, :])
            self.rec_weights = np.ascontiguousarray(layer.w_rec.T, dtype=np.int64)
        self.bytes_per_step = 8 * layer.size * (self.ff.per_group + 4) + 8 * layer.n_in

    def dense_is_cheaper(self, spikes: int, batch: int) -> bool:
        """Whether one step's recurrent input is cheaper as the dense matmul (``batch x
        size x len(rec_ks) x size`` multiply-adds and the scatter of its result) than spike
        by spike (``spikes x size`` indexed adds, :data:`EVENT_COST_IN_MACS` each)."""
        if self.rec_stack is None:
            return False
        size, k = self.layer.size, len(self.rec_ks)
        return EVENT_COST_IN_MACS * spikes * size > batch * k * size * (size + EVENT_COST_IN_MACS)


#: Relative cost of one indexed add of the spike-by-spike recurrent path, in float
#: multiply-adds of a BLAS matmul (measured on x86-64 with OpenBLAS: about 10 ns vs 0.2 ns).
EVENT_COST_IN_MACS = 50


def _feedforward_current(pre: np.ndarray, plan: _LayerPlan) -> np.ndarray:
    """``I[b,t,j] = sum_i W[j,i] * pre[b, t - D[j,i], i]`` for all steps, as int64."""
    batch, steps, n_in = pre.shape
    size = plan.layer.size
    acc = np.zeros((batch, steps, size), dtype=plan.ftype)
    flat = pre.reshape(batch * steps, n_in).astype(plan.ftype)
    for ks, matrix in plan.ff.groups():
        if not len(ks):
            continue
        per_delay = (flat @ matrix).reshape(batch, steps, len(ks), size)
        for m, k in enumerate(ks):
            if k < steps:
                acc[:, k:, :] += per_delay[:, :steps - k, m, :]
        del per_delay
    return np.rint(acc).astype(np.int64)


#: Spikes x fan-out applied at once by the recurrent event path (bounds its temporaries:
#: three arrays of this many 8-byte entries).
EVENT_ENTRIES = 1 << 20


def _add_recurrent_events(plan: _LayerPlan, flat: np.ndarray, row: int, fired: np.ndarray,
                          t: int) -> None:
    """``current[b, t + D_rec[j,i], j] += W_rec[j,i]`` for every unit i that fired in sample
    b at step t: the recurrent input, spike by spike (exact int64). ``flat`` is the current
    ``(B, row // size, size)`` raveled."""
    samples, units = np.nonzero(fired)
    per_block = max(1, EVENT_ENTRIES // plan.layer.size)
    for e in range(0, len(units), per_block):
        b, i = samples[e:e + per_block], units[e:e + per_block]
        index = (b * row + t * plan.layer.size)[:, None] + plan.rec_offsets[i]
        np.add.at(flat, index.ravel(), plan.rec_weights[i].ravel())


def _run_chunk(plans: list[_LayerPlan], spikes: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    pre = spikes
    lif_spikes: list[np.ndarray] = []
    scores = None
    for plan in plans:
        current = _feedforward_current(pre, plan)
        if plan.layer.has_bias:
            current += plan.layer.bias
        out = _integrate(plan, current)
        if plan.layer.kind is LayerKind.LIF:
            lif_spikes.append(out)
            pre = out
        else:
            scores = out
    return scores, lif_spikes


def _integrate(plan: _LayerPlan, current: np.ndarray) -> np.ndarray:
    """Run the membrane recursion over time. Returns spikes ``(B, T, N)`` uint8 for a lif
    layer, or scores ``(B, N)`` int64 for a readout."""
    layer = plan.layer
    batch, steps, size = current.shape
    vlo, vhi = layer.v_range
    beta, shift, half = layer.beta, layer.f_bits, 1 << (layer.f_bits - 1)
    v = np.zeros((batch, size), dtype=np.int64)
    if layer.kind is LayerKind.READOUT:
        scores = np.zeros((batch, size), dtype=np.int64)
        for t in range(steps):
            _decay_into(v, v, beta, half, shift, current[:, t], vlo, vhi)
            scores += v
        return scores
    spikes = np.zeros((batch, steps, size), dtype=np.uint8)
    threshold, subtract = layer.threshold, layer.reset == Reset.SUBTRACT
    ks = plan.rec_ks
    if len(ks):
        # current[:, t] gains the recurrent input of earlier steps as they are computed
        current = np.concatenate([current, np.zeros((batch, layer.d_max + 1, size), np.int64)], 1)
        flat, row = current.reshape(-1), current.shape[1] * size     # a view: contiguous
    u, reset = np.empty_like(v), np.empty_like(v)
    fired, kept = np.empty((batch, size), dtype=bool), np.empty((batch, size), dtype=bool)
    for t in range(steps):
        _decay_into(u, v, beta, half, shift, current[:, t], vlo, vhi)
        np.greater_equal(u, threshold, out=fired)
        if subtract:            # v = u - threshold * fired
            np.multiply(fired, threshold, out=reset)
            np.subtract(u, reset, out=v)
        else:                   # v = u * (not fired)
            np.logical_not(fired, out=kept)
            np.multiply(u, kept, out=v)
        spikes[:, t] = fired
        if len(ks):
            count = int(np.count_nonzero(fired))
            if not count:
                continue
            if plan.dense_is_cheaper(count, batch):
                rec = np.rint(fired.astype(plan.ftype) @ plan.rec_stack).astype(np.int64)
                current[:, t + ks, :] += rec.reshape(batch, len(ks), size)
            else:
                _add_recurrent_events(plan, flat, row, fired, t)
    return spikes


def _decay_into(out: np.ndarray, v: np.ndarray, beta: int, half: int, shift: int,
                current: np.ndarray, lo: int, hi: int) -> None:
    """``out = clamp(((v * beta + half) >> shift) + current, lo, hi)`` in place (``out`` may
    be ``v``): section 3's decay, input and saturation, without temporaries."""
    np.multiply(v, beta, out=out)
    out += half
    np.right_shift(out, shift, out=out)
    out += current
    _clamp(out, lo, hi)


def _clamp(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``x`` clamped to ``lo..hi`` in place (np.clip without its per-call overhead)."""
    np.maximum(x, lo, out=x)
    return np.minimum(x, hi, out=x)
