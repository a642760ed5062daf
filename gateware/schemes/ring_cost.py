"""The ``ring`` scheme's cost model (its engine: :mod:`.ring`)."""

from __future__ import annotations

import numpy as np

from delayhw.spec import LayerKind

from ..shape import LIF_LATENCY, STEP_OVERHEAD, memory_depth
from ..wire import INDEX_BITS
from .cost import SchemeCost

#: Cycles (measured in tests/test_gateware_ring.py::test_cycles_per_step_match_the_formula
#: and tests/test_gateware_overlap.py): from the last cycle a spike occupies the issue stage
#: until the events pipeline is empty; from a neuron group's issue to its write-back (and
#: its spike-list entry); from the neuron pass's start to the layer's end, beyond one cycle
#: per group; from a list entry's write to the first cycle the next layer can take it
#: (counted, read through a non-transparent port, registered in the entry queue); the
#: first cycle a spike of a list complete at the start (own list, input list) can be taken
RING_EVENT_DRAIN = 7
RING_WRITE_LATENCY = 1 + LIF_LATENCY
RING_NEURON_TAIL = 3 + LIF_LATENCY
RING_LIST_DELAY = 3
RING_FIRST_TAKE = 2
#: from the cycle the top layer starts a step to the first cycle a layer below it, held
#: meanwhile, can start that step's neuron pass (measured in the same tests)
RING_HOLD = 2


def ring_schedule(layers, lanes: int, steps, words=None) -> tuple[list[int], list[int]]:
    """:meth:`SchemeCost.schedule` of a ``ring`` core, whose steps pipeline. Layer ``k``
    starts step ``t`` at ``s_k = max(e_k(t-1), s_(k-1) + 1)`` (``e_k``: the cycle it ends a
    step, ``s_0``: its STEP taken). It takes one spike per cycle from its lists (its own list
    of the previous step first, from ``s_k + RING_FIRST_TAKE``, then its source's list of
    this step as that grows: an entry written in cycle ``w`` can be taken from ``w +
    RING_LIST_DELAY``, input channels from ``s_0 + RING_FIRST_TAKE``) and holds each in the
    issue stage for ``G`` cycles; its source's list is complete a cycle after the source
    ends. Its neuron pass starts once its events are done, and below the top layer not
    before ``s_top + RING_HOLD`` (the outputs stay in step order); the top layer's end is
    the step's STEP marker."""
    lane_bits = (lanes - 1).bit_length()
    top = len(layers) - 1

    def entries(units) -> list[tuple[int, int]]:
        """(group, spikes) of every group with a spike, in group order."""
        if units is None:
            return []
        counts = np.bincount(np.flatnonzero(units) >> lane_bits)
        return [(g, int(n)) for g, n in enumerate(counts) if n]

    ends = [0] * len(layers)
    starts, dones = [], []
    for t, (input_events, spikes, previous) in enumerate(steps):
        begin = [max(ends[0], starts[-1] + words[t] + 2 if t and words is not None else 0)]
        for k in range(1, len(layers)):
            begin.append(max(ends[k], begin[k - 1] + 1))
        # (cycle it can be taken, spikes) per list entry
        source = [(begin[0] + RING_FIRST_TAKE, 1)] * input_events
        source_final = begin[0] + 1         # first cycle the source's list is complete
        for k, layer in enumerate(layers):
            g_k = layer.groups(lanes)
            issue = None                    # the cycle of the latest spike's issue
            own = entries(previous[k]) if layer.recurrent else []
            for ready in ([begin[k] + RING_FIRST_TAKE] * sum(n for _, n in own)
                          + [ready for ready, n in source for _ in range(n)]):
                take = ready if issue is None else max(ready, issue)
                issue = take + 1 if issue is None else max(take + 1, issue + g_k)
            neurons = max(begin[k] + 1, source_final) + 2
            if issue is not None:
                neurons = max(neurons, issue + g_k + RING_EVENT_DRAIN + 1)
            if k < top:
                neurons = max(neurons, begin[top] + RING_HOLD)
            ends[k] = neurons + g_k + RING_NEURON_TAIL
            source = [(neurons + g + RING_WRITE_LATENCY + RING_LIST_DELAY, n)
                      for g, n in entries(spikes[k])] if layer.kind is LayerKind.LIF else []
            source_final = ends[k] + 1
        starts.append(begin[0])
        dones.append(ends[top])
    return starts, dones


class RingCost(SchemeCost):
    """Event-driven: layer ``k`` spends ``ceil(N_k / lanes)`` cycles per spike it receives
    (``source_spikes[k]``: distinct input channels of this step for layer 0, layer ``k-1``'s
    spikes of this step otherwise; ``recurrent_spikes[k]``: its own spikes of the previous
    step, recurrent layers), then one neuron pass of ``ceil(N_k / lanes)`` cycles and a fixed
    overhead. The layers overlap and steps pipeline (:func:`ring_schedule`), so when a
    layer's spikes come in its pass matters: :meth:`schedule` and :meth:`step_cycles` take
    the spikes, :meth:`cycles_per_step` the counts (the period of a stream of such steps),
    taking the lowest-numbered units to be the spiking ones. Without counts: every source
    spiking (exact)."""

    cycles_note = ("; value: every input and unit spiking in every step; steps pipeline, so "
                   "the value is a stream's period and a step alone takes longer "
                   "(CoreShape.step_schedule)")
    pipelined_steps = True
    sample_end_delay = 1
    walks_inputs_after_sample = False
    #: LUT4 per datapath bit on top of the fifo rule (boards/fit.py)
    lut_per_bit = (7.2, 3.9)

    def cycles_per_step(self, source_spikes=None, recurrent_spikes=None) -> int:
        layers = self.shape.layers
        if source_spikes is None:
            source_spikes = [l.n_in for l in layers]
        if recurrent_spikes is None:
            recurrent_spikes = [l.size if l.recurrent else 0 for l in layers]
        spikes = [np.arange(l.size) < source_spikes[k + 1] if k + 1 < len(layers) else None
                  for k, l in enumerate(layers)]
        previous = [np.arange(l.size) < rec for l, rec in zip(layers, recurrent_spikes)]
        # a stream of such steps: the period once it has settled
        starts, _ = self.schedule([(source_spikes[0], spikes, previous)] * 3)
        return starts[2] - starts[1]

    def step_cycles(self, input_events: int, spikes, previous) -> int:
        """The cycles of one step alone: from its start to its STEP marker, and one more
        (the cycle the next step would start in, if steps did not pipeline)."""
        starts, dones = self.schedule([(input_events, spikes, previous)])
        return dones[0] - starts[0] + STEP_OVERHEAD

    def schedule(self, steps, words=None) -> tuple[list[int], list[int]]:
        return ring_schedule(self.shape.layers, self.shape.lanes, steps, words)

    def cycles_formula(self) -> str:
        return (f"per step (the next step's input events arrive meanwhile; layers overlap; "
                f"steps pipeline: layer k starts the next step as it ends this one, once "
                f"layer k-1 has, and a layer below the last holds its neuron pass until "
                f"the last layer has started the step + {RING_HOLD}; value: the period of "
                f"a stream of such steps; alone, a step takes): "
                f"the last layer's end + {STEP_OVERHEAD}; layer k (G_k = ceil(N_k / "
                f"{self.shape.lanes})) issues each spike it receives for G_k cycles, its own "
                f"spikes of the previous step first (from cycle {RING_FIRST_TAKE}), then layer "
                f"k-1's of this step, each from {RING_LIST_DELAY} cycles after layer k-1 wrote "
                f"its list entry (input channels from cycle {RING_FIRST_TAKE}); its neuron "
                f"pass starts "
                f"{RING_EVENT_DRAIN + 1} cycles after its last issue (or 2 after layer "
                f"k-1's end, if later), writes group g at start + g + {RING_WRITE_LATENCY} "
                f"and ends at start + G_k + {RING_NEURON_TAIL}")

    def clear_walk(self, layer) -> int:
        return layer.groups(self.shape.lanes) * (layer.d_max + 1)

    def event_bits(self) -> int:
        """Width of a spike-event list entry: a unit group and its lane mask."""
        return INDEX_BITS - (self.shape.lanes - 1).bit_length() + self.shape.lanes

    def memory_bits(self) -> dict[str, int]:
        """Fan-out weights and delays (as fifo), one ring of ``d_max+1`` slots of
        ``acc_bits`` per unit (a memory per lane), membranes, bias, scores, a spike-event
        list per lif layer (two steps' lists: the step pipeline), and the input bitmap plus the input event list (both
        double-buffered: two banks of ``n_inputs``)."""
        s = self.shape
        p = s.lanes
        ev = self.event_bits()
        bits = {"synapses": 0, "ring": 0, "membranes": 0, "bias": 0, "scores": 0,
                "spike_lists": 0, "input_bitmap": 2 * memory_depth(s.n_inputs),
                "input_events": memory_depth(2 * s.n_inputs) * ev}
        for l in s.layers:
            g = l.groups(p)
            bits["synapses"] += s.synapse_bits(l)
            bits["ring"] += p * memory_depth(g * (l.d_max + 1)) * l.acc_bits
            bits["membranes"] += memory_depth(g) * p * l.v_bits
            bits["bias"] += memory_depth(g) * p * l.w_bits if l.bias else 0
            if l.kind is LayerKind.READOUT:
                bits["scores"] += memory_depth(g) * p * s.score_bits
            else:
                bits["spike_lists"] += memory_depth(2 * g) * ev
        return bits

    def delay_storage(self) -> dict[str, int]:
        return {"ring_N_x_dmax_plus_1_x_acc_bits":
                sum(l.size * (l.d_max + 1) * l.acc_bits for l in self.shape.layers)}
