"""Structural parameters of a core, in plain Python (no Amaranth), shared by the generator,
the simulators, the manifest and the host.

A :class:`CoreShape` fixes everything that changes the hardware: sizes, widths, ``d_max``,
recurrence, bias, lanes, scheme. Weights, delays, biases and the per-layer parameters
``beta``/``threshold``/``reset`` are *contents*: initialised from a model at elaboration and
rewritable at run time through the configuration stream (:func:`config_words`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np

from delayhw.errors import DelayhwError
from delayhw.spec import LIMITS, LayerShape, Model, Reset

#: delay schemes (clock-driven delay lines, event-driven rings of future currents), from
#: their registry in :mod:`delayhw.gateware.schemes`
from .schemes import SCHEMES  # noqa: E402,F401
# the wire format lives in wire.py; its names are re-exported here for existing importers
from .wire import (CONFIG_DATA_BITS, INDEX_BITS, LAYER_BITS, Field, InKind,  # noqa: F401
                   OutKind, Param, config_address)

from .memories import UP5K_SPRAMS, SynapseMemory, nibbles, spram_blocks  # noqa: E402

#: where the weight/delay memories go: block RAM everywhere, or (iCE40UP5K) the largest ones
#: in SPRAM (:meth:`CoreShape.spram_layers`)
MEMORIES = ("bram", "spram")
#: a synapse memory goes to SPRAM only above this many bits (smaller ones fit a few EBR)
SPRAM_MIN_BITS = 16 * 1024
LANES = (1, 2, 4, 8, 16, 32, 64)   # lane counts a core can be built with (powers of two)
MAX_STEPS = 65535            # default bound on time steps per sample (scores exact up to it)
MAX_STEPS_LIMIT = 1 << 32    # so scores (v_bits <= 32) always fit the result file's int64


def memory_depth(rows: int) -> int:
    """Depth of a memory holding ``rows`` rows: at least 2, so no address port is zero bits
    wide (Amaranth writes those as ``[-1:0]``, which Verilator's lint rejects)."""
    return max(2, rows)


@dataclass(frozen=True)
class CoreShape:
    """Everything that fixes a core's hardware. Build with :meth:`from_model` or directly
    (for a core whose memories are loaded at run time)."""

    n_inputs: int
    layers: tuple[LayerShape, ...]
    lanes: int = 1
    scheme: str = "fifo"
    out_fifo_depth: int = 8
    #: time steps per sample up to which the readout scores are exact (:attr:`score_bits`);
    #: a longer sample is flagged in its ``SAMPLE`` output event, never silently wrong
    max_steps: int = MAX_STEPS
    #: ``"bram"``, or ``"spram"``: the largest synapse memories in iCE40 ``SB_SPRAM256KA``
    #: blocks (:meth:`spram_layers`), which the bitstream cannot initialise: such a core's
    #: weights and delays arrive through the configuration stream
    memory: str = "bram"

    def __post_init__(self):
        if self.memory not in MEMORIES:
            raise DelayhwError(f"memory: {self.memory!r} is not available; choose one of "
                               f"{MEMORIES}")
        if self.scheme not in SCHEMES:
            raise DelayhwError(f"scheme: {self.scheme!r} is not available; choose one of "
                               f"{SCHEMES}")
        if self.lanes not in LANES:
            raise DelayhwError(f"lanes: must be one of {LANES}, got {self.lanes}")
        if not 1 <= self.n_inputs <= LIMITS["n_inputs"][1]:
            raise DelayhwError(f"n_inputs: must be in 1..65535, got {self.n_inputs}")
        if not 1 <= len(self.layers) <= (1 << LAYER_BITS):
            raise DelayhwError(f"layers: a core has 1..{1 << LAYER_BITS} layers")
        if self.out_fifo_depth < 4:
            raise DelayhwError(f"out_fifo_depth: must be at least 4, got {self.out_fifo_depth}")
        if not 1 <= self.max_steps <= MAX_STEPS_LIMIT:
            raise DelayhwError(f"max_steps: must be in 1..{MAX_STEPS_LIMIT}, got {self.max_steps}")

    @staticmethod
    def from_model(model: Model, lanes: int = 1, scheme: str = "fifo",
                   max_steps: int = MAX_STEPS, memory: str = "bram") -> "CoreShape":
        return CoreShape(
            n_inputs=model.n_inputs, lanes=lanes, scheme=scheme, max_steps=max_steps,
            memory=memory, layers=tuple(layer.shape for layer in model.layers))

    @property
    def score_bits(self) -> int:
        """Signed width of a readout score, exact for up to :attr:`max_steps` steps:
        ``|sum_t v(t)| <= T * 2**(v_bits-1)``, so ``v_bits + ceil(log2(max_steps))`` bits."""
        return self.layers[-1].v_bits + (self.max_steps - 1).bit_length()

    @property
    def step_bits(self) -> int:
        """Width of the core's per-sample step counter (counts up to ``max_steps + 1``)."""
        return (self.max_steps + 1).bit_length()

    def check_model(self, model: Model, source: str = "model") -> None:
        """Raise DelayhwError unless ``model`` has exactly this shape."""
        other = CoreShape.from_model(model, self.lanes, self.scheme)
        if other.n_inputs != self.n_inputs:
            raise DelayhwError(f"{source}: n_inputs: the core has {self.n_inputs}, the model "
                               f"{other.n_inputs}")
        if len(other.layers) != len(self.layers):
            raise DelayhwError(f"{source}: layers: the core has {len(self.layers)} layers, the "
                               f"model {len(other.layers)}")
        for k, (a, b) in enumerate(zip(self.layers, other.layers)):
            if a != b:
                diff = [f"{f}={getattr(b, f)} (core {getattr(a, f)})"
                        for f in a.__dataclass_fields__ if getattr(a, f) != getattr(b, f)]
                raise DelayhwError(f"{source}: layers[{k}]: shape differs from the core: "
                                   + ", ".join(diff))

    @property
    def key(self) -> str:
        """A short stable hash of the shape (build caches and the board's shape id are keyed
        by it). ``memory`` is left out: where the memories sit changes neither behaviour nor
        interface, so a host runs a model on either build."""
        fields = self.as_dict()
        del fields["memory"]
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return asdict(self)

    # --------------------------------------------------------------------- cost formulas

    def cycles_per_step(self, source_spikes=None, recurrent_spikes=None) -> int:
        """Clock cycles of one step, from the cycle it starts (its STEP taken) to the cycle it
        has finished, with the output always ready. Inputs are double-buffered: the next
        step's events arrive while this one computes, and if its STEP is in, it starts in
        the cycle this one finishes, so this is also the period of a stream of steps (a
        step waits for its events only when they number more than the previous step's
        cycles, see :meth:`sample_cycles`).

        ``fifo``: every synapse of every layer is visited once per step
        (``sum_k ceil(N_k / lanes) * fan_in_k``) plus a fixed pipeline and control overhead
        per layer and per step; the spike counts do not matter.

        ``ring``: layer ``k`` spends ``ceil(N_k / lanes)`` cycles per spike it receives:
        ``source_spikes[k]`` (distinct input channels of this step for layer 0, layer
        ``k-1``'s spikes of this step otherwise) plus ``recurrent_spikes[k]`` (its own
        spikes of the previous step, recurrent layers), then one neuron pass of
        ``ceil(N_k / lanes)`` cycles, plus a fixed overhead, plus the event pipeline's drain
        if it received any spike, plus one cycle to switch to the recurrent list when a
        recurrent layer's source was silent. Without counts: every source spiking.

        The output stream sends one spike per cycle. With one lane a neuron pass makes at
        most one spike per cycle, so the formula is exact; with more lanes, a pass whose
        spike words carry more spikes than the stream drains fills the output queue
        (``out_fifo_depth`` words) and then waits for it: the formula is then a lower bound
        (``bench/ring.py`` reports measured cycles)."""
        if self.scheme == "fifo":
            return sum(l.groups(self.lanes) * l.fan_in + LAYER_OVERHEAD
                       for l in self.layers) + STEP_OVERHEAD
        layers = self.layers
        if source_spikes is None:
            source_spikes = [l.n_in for l in layers]
        if recurrent_spikes is None:
            recurrent_spikes = [l.size if l.recurrent else 0 for l in layers]
        total = STEP_OVERHEAD
        for l, src, rec in zip(layers, source_spikes, recurrent_spikes):
            rec = rec if l.recurrent else 0
            total += l.groups(self.lanes) * (src + rec + 1) + RING_LAYER_OVERHEAD
            total += RING_EVENT_DRAIN if src + rec else 0
            total += RING_RECURRENT_SWITCH if l.recurrent and not src else 0
        return total

    def cycles_of_sample(self, input_spikes, layer_spikes) -> list[int]:
        """:meth:`cycles_per_step` of every step of one sample, from its input ``(T,
        n_inputs)`` and the spikes ``(T, size)`` of every lif layer (the golden model's)."""
        input_spikes = np.asarray(input_spikes) != 0
        lif = iter(layer_spikes)
        per_layer = [np.asarray(next(lif)) != 0 if l.kind == "lif" else None
                     for l in self.layers]
        out = []
        for t in range(input_spikes.shape[0]):
            src = [int(input_spikes[t].sum())] + [int(per_layer[k][t].sum())
                                                  for k in range(len(self.layers) - 1)]
            rec = [int(per_layer[k][t - 1].sum()) if l.recurrent and t else 0
                   for k, l in enumerate(self.layers)]
            out.append(self.cycles_per_step(src, rec))
        return out

    def sample_cycles(self, input_spikes, layer_spikes) -> int:
        """Cycles of one sample streamed at one input word per cycle (its events and STEPs,
        then SAMPLE), output always ready: from its first input word accepted to the first
        cycle the core accepts the next sample's. Step ``t + 1``'s ``n + 1`` words (SPIKEs,
        STEP) are accepted from the cycle after step ``t`` starts (``ready`` comes from
        registers), so step ``t + 1`` starts at ``max(start_t + cycles_t, start_t + n + 2)``;
        after the last step the score walk and the clear (:meth:`clear_cycles`) follow."""
        steps = self.cycles_of_sample(input_spikes, layer_spikes)
        events = [int(n) for n in (np.asarray(input_spikes) != 0).sum(axis=1)]
        start = events[0] + 1           # the first step's words, then it starts
        for t, cycles in enumerate(steps[:-1]):
            start += max(cycles, events[t + 1] + 2)
        readout = self.layers[-1]
        return start + steps[-1] + SCORE_WALK * readout.groups(self.lanes) \
            + readout.size + self.clear_cycles() + SAMPLE_OVERHEAD

    def clear_cycles(self) -> int:
        """Cycles of the state-clearing walk after reset and after every sample."""
        walks = [self.n_inputs]
        for l in self.layers:
            g = l.groups(self.lanes)
            if self.scheme == "ring":
                walks.append(g * (l.d_max + 1))
            else:
                walks.append(max(g * l.fan_in, (2 if l.recurrent else 1) * g))
        return max(walks) + 2

    def cycles_formula(self) -> str:
        if self.scheme == "ring":
            return (f"per step (the next step's input events arrive meanwhile): "
                    f"sum_k [ceil(N_k / {self.lanes}) * (S_k + R_k + 1) + {RING_LAYER_OVERHEAD}"
                    f" + {RING_EVENT_DRAIN} if S_k + R_k > 0 + {RING_RECURRENT_SWITCH} if "
                    f"layer k is recurrent and S_k = 0] + {STEP_OVERHEAD}; S_k = spikes into layer k this step (distinct input channels "
                    f"for k = 0, else layer k-1's spikes), R_k = layer k's own spikes of the "
                    f"previous step if it is recurrent, else 0")
        return (f"per step (the next step's input events arrive meanwhile): "
                f"sum_k ceil(N_k / {self.lanes}) * fan_in_k + {LAYER_OVERHEAD} * L + "
                f"{STEP_OVERHEAD}")

    def event_bits(self) -> int:
        """Width of a spike-event list entry (``ring``): a unit group and its lane mask."""
        return INDEX_BITS - (self.lanes - 1).bit_length() + self.lanes

    def synapse_bits(self, layer: LayerShape) -> int:
        """Bits of one layer's synapse memory: ``groups * fan_in`` rows of ``lanes`` packed
        ``{w, d}`` pairs, each field rounded up to whole nibbles (:class:`SynapseMemory`)."""
        rows = memory_depth(layer.groups(self.lanes) * layer.fan_in)
        return SynapseMemory.packed_bits(layer.w_bits, layer.d_bits, self.lanes, rows)

    def spram_layers(self) -> tuple[bool, ...]:
        """Per layer: is its synapse memory built from iCE40 SPRAM? With ``memory="spram"``,
        the largest synapse memories first, each while the UP5K's 4 SPRAM blocks have room
        for it and it holds more than :data:`SPRAM_MIN_BITS`; all others (and every memory
        with ``memory="bram"``) are block RAM."""
        chosen = [False] * len(self.layers)
        if self.memory != "spram":
            return tuple(chosen)
        left = UP5K_SPRAMS
        by_size = sorted(range(len(self.layers)), reverse=True,
                         key=lambda k: self.synapse_bits(self.layers[k]))
        for k in by_size:
            l = self.layers[k]
            rows = memory_depth(l.groups(self.lanes) * l.fan_in)
            blocks = spram_blocks(self.lanes * (nibbles(l.w_bits) + nibbles(l.d_bits)), rows)
            if self.synapse_bits(l) > SPRAM_MIN_BITS and blocks <= left:
                chosen[k], left = True, left - blocks
        return tuple(chosen)

    def memory_bits(self) -> dict[str, int]:
        """Bits of every memory, by kind, for this scheme (what the generated core holds)."""
        if self.scheme == "ring":
            return self._ring_memory_bits()
        p = self.lanes
        bits = {"synapses": 0, "delay_lines": 0, "membranes": 0, "bias": 0,
                "scores": 0, "spike_bitmaps": 0, "input_bitmap": 2 * memory_depth(self.n_inputs)}
        for l in self.layers:
            g = memory_depth(l.groups(p))
            bits["synapses"] += self.synapse_bits(l)
            bits["delay_lines"] += memory_depth(l.fan_in) * l.d_max if l.d_max else 0
            bits["membranes"] += g * p * l.v_bits
            bits["bias"] += g * p * l.w_bits if l.bias else 0
            if l.kind == "readout":
                bits["scores"] += g * p * self.score_bits
            else:
                bits["spike_bitmaps"] += memory_depth((2 if l.recurrent else 1) * l.groups(p)) * p
        bits["total"] = sum(bits.values())
        return bits


    def _ring_memory_bits(self) -> dict[str, int]:
        """``ring``: fan-out weights and delays (as fifo), one ring of ``d_max+1`` slots of
        ``acc_bits`` per unit (a memory per lane), membranes, bias, scores, a spike-event
        list per lif layer, and the input bitmap plus the input event list (both double-buffered:
        two banks of ``n_inputs``)."""
        p = self.lanes
        ev = self.event_bits()
        bits = {"synapses": 0, "ring": 0, "membranes": 0, "bias": 0, "scores": 0,
                "spike_lists": 0, "input_bitmap": 2 * memory_depth(self.n_inputs),
                "input_events": memory_depth(2 * self.n_inputs) * ev}
        for l in self.layers:
            g = l.groups(p)
            bits["synapses"] += self.synapse_bits(l)
            bits["ring"] += p * memory_depth(g * (l.d_max + 1)) * l.acc_bits
            bits["membranes"] += memory_depth(g) * p * l.v_bits
            bits["bias"] += memory_depth(g) * p * l.w_bits if l.bias else 0
            if l.kind == "readout":
                bits["scores"] += memory_depth(g) * p * self.score_bits
            else:
                bits["spike_lists"] += memory_depth(g) * ev
        bits["total"] = sum(bits.values())
        return bits


#: Cycles of pipeline fill/drain and control per layer run, and per step (measured in
#: tests/test_gateware_core.py::test_cycles_per_step_matches_the_formula).
LIF_LATENCY = 5             #: :attr:`LifUnit.latency <delayhw.gateware.lif.LifUnit.latency>`
LAYER_OVERHEAD = 7 + LIF_LATENCY
STEP_OVERHEAD = 1
#: ``ring``: per layer run; the event pipeline's drain when a layer received spikes; the
#: switch to the recurrent list when the source was silent (measured in
#: tests/test_gateware_ring.py::test_cycles_per_step_match_the_formula).
RING_LAYER_OVERHEAD = 6 + LIF_LATENCY
RING_EVENT_DRAIN = 6
RING_RECURRENT_SWITCH = 1
#: the readout's score walk: cycles per unit group (a read) on top of one per unit, and the
#: fixed cycles of a sample's end (SCORES, SAMPLE marker, CLEAR) (measured in
#: tests/test_gateware_overlap.py::test_sample_cycles_match_the_formula)
SCORE_WALK = 1
SAMPLE_OVERHEAD = 5


# ----------------------------------------------------------------------------- configuration


def config_words(model: Model) -> Iterator[tuple[int, int]]:
    """Every ``(address, data)`` configuration write that loads ``model`` into a core of its
    shape: parameters, then per layer W, D, W_rec, D_rec (row-major) and bias."""
    for k, layer in enumerate(model.layers):
        yield config_address(k, Field.PARAM, Param.BETA, 0), layer.beta
        if layer.kind == "lif":
            yield config_address(k, Field.PARAM, Param.THRESHOLD, 0), layer.threshold
            yield config_address(k, Field.PARAM, Param.RESET, 0), Reset(layer.reset).zero_bit
        mats = [(Field.W, layer.w), (Field.D, layer.d)]
        if layer.recurrent:
            mats += [(Field.W_REC, layer.w_rec), (Field.D_REC, layer.d_rec)]
        for fld, mat in mats:
            for j, i in np.ndindex(*mat.shape):
                yield config_address(k, fld, j, i), int(mat[j, i])
        if layer.has_bias:
            for j in range(layer.size):
                yield config_address(k, Field.BIAS, j, 0), int(layer.bias[j])
