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
from delayhw.spec import LIMITS, LayerKind, LayerShape, Model, Reset

#: delay schemes (clock-driven delay lines, event-driven rings of future currents), from
#: their registry in :mod:`delayhw.gateware.schemes` (which also holds their cost models)
from . import schemes
from .schemes import SCHEMES  # noqa: E402,F401
from .wire import LAYER_BITS, Field, Param, config_address

from .memory_geometry import UP5K_SPRAMS, nibbles, spram_blocks, synapse_memory_bits

#: where the weight/delay memories go: block RAM everywhere, or (iCE40UP5K) the largest ones
#: in SPRAM (:meth:`CoreShape.spram_layers`)
MEMORIES = ("bram", "spram")
#: where the core's two input bitmaps sit (:attr:`CoreShape.input_ram`; an event-driven
#: scheme's input event list is left to synthesis): ``"auto"`` as synthesis and
#: :attr:`CoreShape.memory` choose, ``"lut"`` LUT RAM (ECP5 builds only: Yosys
#: ``synth_ice40`` maps no distributed RAM, :meth:`CoreShape.check_family`)
INPUT_RAMS = ("auto", "lut")
#: FPGA families whose synthesis maps each :data:`INPUT_RAMS` choice
INPUT_RAM_FAMILIES = {"auto": ("ice40", "ecp5"), "lut": ("ecp5",)}
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
    #: the two input bitmaps (:data:`INPUT_RAMS`): ``"auto"``: block RAM in an iCE40 SPRAM
    #: build, else synthesis's choice (block RAM on ECP5 at SHD size); ``"lut"``: Yosys
    #: ``ram_style "distributed"`` (ECP5 LUT RAM, whose fast read suits the ring's new-event
    #: decision better than a block RAM's 5.8 ns clock-to-output)
    input_ram: str = "auto"

    def __post_init__(self):
        if self.memory not in MEMORIES:
            raise DelayhwError(f"memory: {self.memory!r} is not available; choose one of "
                               f"{MEMORIES}")
        if self.input_ram not in INPUT_RAMS:
            raise DelayhwError(f"input_ram: {self.input_ram!r} is not available; choose one "
                               f"of {INPUT_RAMS}")
        if self.memory == "spram":              # SPRAM is an iCE40 block
            self.check_family("ice40")
        if self.scheme not in schemes.REGISTRY:
            raise DelayhwError(f"scheme: {self.scheme!r} is not available; choose one of "
                               f"{tuple(schemes.REGISTRY)}")
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
                   max_steps: int = MAX_STEPS, memory: str = "bram",
                   input_ram: str = "auto") -> "CoreShape":
        return CoreShape(
            n_inputs=model.n_inputs, lanes=lanes, scheme=scheme, max_steps=max_steps,
            memory=memory, input_ram=input_ram,
            layers=tuple(layer.shape for layer in model.layers))

    def check_family(self, family: str) -> None:
        """Raise DelayhwError unless synthesis for FPGA ``family`` (``"ice40"``, ``"ecp5"``)
        maps :attr:`input_ram` (:data:`INPUT_RAM_FAMILIES`)."""
        families = INPUT_RAM_FAMILIES[self.input_ram]
        if family not in families:
            raise DelayhwError(
                f"input_ram: {self.input_ram!r} is for {'/'.join(families)} builds only, not "
                f"{family} (Yosys synth_ice40 maps no LUT RAM); use 'auto'")

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
        by it). ``memory`` and ``input_ram`` are left out: where the memories sit changes
        neither behaviour nor interface, so a host runs a model on either build."""
        fields = self.as_dict()
        del fields["memory"], fields["input_ram"]
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return asdict(self)

    # --------------------------------------------------------------------- cost formulas

    @property
    def cost(self) -> "schemes.cost.SchemeCost":
        """This shape's cost model: its scheme's (registered in
        :data:`delayhw.gateware.schemes.REGISTRY`), which the formulas below ask."""
        return schemes.cost_model(self.scheme)(self)

    def cycles_per_step(self, source_spikes=None, recurrent_spikes=None) -> int:
        """Clock cycles of one step, from the cycle it starts (its STEP taken) to the cycle it
        has finished, with the output always ready. Inputs are double-buffered: the next
        step's events arrive while this one computes, and if its STEP is in, it starts in
        the cycle this one finishes, so this is also the period of a stream of steps (a
        step waits for its events only when they number more than the previous step's
        cycles, see :meth:`sample_cycles`). A scheme whose steps pipeline (``ring``: the
        next step starts before this one has finished) gives the period of a stream of
        such steps (:meth:`step_schedule` gives each step's start and end).

        How many cycles is the scheme's (:attr:`cost`): ``source_spikes[k]`` and
        ``recurrent_spikes[k]`` are the spikes layer ``k`` receives from its source in this
        step and from itself in the previous one (an event-driven scheme's cycles grow with
        them); without counts, every source spiking. The layers overlap (each starts with
        the step and waits for its source's spikes), so where in a layer's pass the spikes
        come can matter too: :meth:`cycles_of_sample` takes the spikes themselves, this
        method (``ring``) takes the lowest-numbered units to be the spiking ones.

        The output stream sends one spike per cycle. With one lane a neuron pass makes at
        most one spike per cycle, so the formula is exact; with more lanes, a pass whose
        spike words carry more spikes than the stream drains fills the output queue
        (``out_fifo_depth`` words) and then waits for it: the formula is then a lower bound
        (``bench/ring.py`` reports measured cycles)."""
        return self.cost.cycles_per_step(source_spikes, recurrent_spikes)

    def sample_steps(self, input_spikes, layer_spikes) -> list[tuple]:
        """:meth:`SchemeCost.step_cycles`'s arguments ``(input_events, spikes, previous)`` for
        every step of one sample (its input and lif layer spikes, as below)."""
        input_spikes = np.asarray(input_spikes) != 0
        lif = iter(layer_spikes)
        per_layer = [np.asarray(next(lif)) != 0 if l.kind is LayerKind.LIF else None
                     for l in self.layers]
        out = []
        for t in range(input_spikes.shape[0]):
            spikes = [p[t] if p is not None else None for p in per_layer]
            previous = [p[t - 1] if p is not None and t else None for p in per_layer]
            out.append((int(input_spikes[t].sum()), spikes, previous))
        return out

    def step_schedule(self, input_spikes, layer_spikes, streamed: bool = True
                      ) -> tuple[list[int], list[int]]:
        """The cycles in which each step of one sample starts (its STEP taken) and finishes
        (its STEP marker queued), from the first step's start, output always ready
        (:meth:`SchemeCost.schedule`): ``streamed``, the sample's words sent one per cycle
        as :meth:`sample_cycles` counts them; else every STEP in when the core can take
        it."""
        steps = self.sample_steps(input_spikes, layer_spikes)
        # a step's input words: its distinct input events (each sent once)
        return self.cost.schedule(steps, words=[step[0] for step in steps] if streamed else None)

    def cycles_of_sample(self, input_spikes, layer_spikes) -> list[int]:
        """The cycles of every step of one sample, from its input ``(T, n_inputs)`` and the
        spikes ``(T, size)`` of every lif layer (the golden model's), with every STEP in
        when the core can take it: from the step's start to the next step's (the period of
        the stream), the last step's to its end (the cycle the sample's end begins, less
        one). A scheme whose steps do not pipeline gives :meth:`cycles_per_step` of each
        step's spikes; the sum is the sample's steps' cycles either way."""
        return self.step_periods(*self.step_schedule(input_spikes, layer_spikes,
                                                     streamed=False))

    def step_periods(self, starts, dones) -> list[int]:
        """Every step's cycles as :meth:`cycles_of_sample` counts them, from its steps'
        start and end cycles (a schedule's, or measured in a simulation): start to the next
        start, the last step's start to its end and ``cost.sample_end_delay`` more."""
        return [b - a for a, b in zip(starts, starts[1:])] + \
            [dones[-1] + self.cost.sample_end_delay - starts[-1]]

    def sample_cycles(self, input_spikes, layer_spikes) -> int:
        """Cycles of one sample streamed at one input word per cycle (its events and STEPs,
        then SAMPLE), output always ready: from its first input word accepted to the first
        cycle the core accepts the next sample's. Step ``t + 1``'s ``n + 1`` words (SPIKEs,
        STEP) are accepted from the cycle after step ``t`` starts (``ready`` comes from
        registers), so step ``t + 1`` starts ``n + 2`` cycles after step ``t`` at the
        earliest (:meth:`SchemeCost.schedule`); after the last step the score walk and the
        clear (:meth:`clear_cycles`) follow."""
        _, dones = self.step_schedule(input_spikes, layer_spikes)
        first_words = int((np.asarray(input_spikes[0]) != 0).sum())
        # the first step's words, then it starts
        return first_words + 1 + dones[-1] + self.cost.sample_end_delay \
            + self.sample_end_cycles()

    def samples_per_s(self, clock_hz: float, cycles_per_step: float, steps: int) -> float:
        """Samples per second at ``clock_hz`` when every one of a sample's ``steps`` takes
        ``cycles_per_step`` (e.g. :meth:`cycles_per_step`'s bound) and the clear after it
        (:meth:`clear_cycles`) follows: the headline rate of a board build."""
        return clock_hz / (cycles_per_step * steps + self.clear_cycles(after_sample=True))

    def sample_end_cycles(self) -> int:
        """Cycles from a sample's last step finished to the core taking the next sample:
        the readout's score walk, the SAMPLE marker and the clear."""
        readout = self.layers[-1]
        return SCORE_WALK * readout.groups(self.lanes) + readout.size \
            + self.clear_cycles(after_sample=True) + SAMPLE_OVERHEAD

    def busy_cycles(self, input_spikes, layer_spikes) -> int:
        """Cycles the core is busy (``status.busy``) with one sample: its steps
        (:meth:`cycles_of_sample`) and :meth:`sample_end_cycles`, plus
        :data:`BUSY_OVERHEAD`. Exact when every step's input words arrive while the step
        before computes (the first step's arrive while the core is idle and are not
        counted); a step that waits for its STEP adds a cycle. What the on-board benchmark
        (``delayhw run --bench``) counts per sample."""
        return sum(self.cycles_of_sample(input_spikes, layer_spikes)) \
            + self.sample_end_cycles() + BUSY_OVERHEAD

    def clear_cycles(self, after_sample: bool = False) -> int:
        """Cycles of the state-clearing walk after reset (and after a sample that had input
        events after its last STEP); ``after_sample``: after a sample without, where a
        scheme whose bitmaps are then clear (``walks_inputs_after_sample`` false) skips
        their ``n_inputs`` cycles."""
        cost = self.cost
        inputs = [] if after_sample and not cost.walks_inputs_after_sample else [self.n_inputs]
        return max(inputs + [cost.clear_walk(l) for l in self.layers]) + 2

    def cycles_formula(self) -> str:
        return self.cost.cycles_formula()

    def synapse_bits(self, layer: LayerShape) -> int:
        """Bits of one layer's synapse memory: ``groups * fan_in`` rows of ``lanes`` packed
        ``{w, d}`` pairs, each field rounded up to whole nibbles (``SynapseMemory``)."""
        rows = memory_depth(layer.groups(self.lanes) * layer.fan_in)
        return synapse_memory_bits(layer.w_bits, layer.d_bits, self.lanes, rows)

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
        bits = self.cost.memory_bits()
        bits["total"] = sum(bits.values())
        return bits


#: Cycles of the LIF pipeline, and of control per step (measured in
#: tests/test_gateware_core.py::test_cycles_per_step_matches_the_formula); each scheme's
#: per-layer overheads are in its cost model (``gateware/schemes/*_cost.py``).
LIF_LATENCY = 5             #: :attr:`LifUnit.latency <delayhw.gateware.lif.LifUnit.latency>`
STEP_OVERHEAD = 1
#: the readout's score walk: cycles per unit group (a read) on top of one per unit, and the
#: fixed cycles of a sample's end (SCORES, SAMPLE marker, CLEAR) (measured in
#: tests/test_gateware_overlap.py::test_sample_cycles_match_the_formula)
SCORE_WALK = 1
SAMPLE_OVERHEAD = 5
#: cycles :meth:`CoreShape.busy_cycles` adds per sample (measured in
#: tests/test_hostlink.py::test_bench_replays_the_store_and_counts_the_cores_busy_cycles)
BUSY_OVERHEAD = 0


# ----------------------------------------------------------------------------- configuration


def config_words(model: Model) -> Iterator[tuple[int, int]]:
    """Every ``(address, data)`` configuration write that loads ``model`` into a core of its
    shape: parameters, then per layer W, D, W_rec, D_rec (row-major) and bias."""
    for k, layer in enumerate(model.layers):
        yield config_address(k, Field.PARAM, Param.BETA, 0), layer.beta
        if layer.kind is LayerKind.LIF:
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
