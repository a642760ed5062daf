"""The ``ring`` scheme's cost model (its engine: :mod:`.ring`)."""

from __future__ import annotations

from ..shape import INDEX_BITS, LIF_LATENCY, STEP_OVERHEAD, memory_depth
from .cost import SchemeCost

#: Cycles per layer run; the event pipeline's drain when a layer received spikes; the
#: switch to the recurrent list when the source was silent (measured in
#: tests/test_gateware_ring.py::test_cycles_per_step_match_the_formula).
RING_LAYER_OVERHEAD = 6 + LIF_LATENCY
RING_EVENT_DRAIN = 6
RING_RECURRENT_SWITCH = 1


class RingCost(SchemeCost):
    """Event-driven: layer ``k`` spends ``ceil(N_k / lanes)`` cycles per spike it receives:
    ``source_spikes[k]`` (distinct input channels of this step for layer 0, layer ``k-1``'s
    spikes of this step otherwise) plus ``recurrent_spikes[k]`` (its own spikes of the
    previous step, recurrent layers), then one neuron pass of ``ceil(N_k / lanes)`` cycles,
    plus a fixed overhead, plus the event pipeline's drain if it received any spike, plus
    one cycle to switch to the recurrent list when a recurrent layer's source was silent.
    Without counts: every source spiking."""

    cycles_note = "; value: every input and unit spiking in every step"
    #: LUT4 per datapath bit on top of the fifo rule (boards/fit.py)
    lut_per_bit = (7.2, 3.9)

    def cycles_per_step(self, source_spikes=None, recurrent_spikes=None) -> int:
        s = self.shape
        layers = s.layers
        if source_spikes is None:
            source_spikes = [l.n_in for l in layers]
        if recurrent_spikes is None:
            recurrent_spikes = [l.size if l.recurrent else 0 for l in layers]
        total = STEP_OVERHEAD
        for l, src, rec in zip(layers, source_spikes, recurrent_spikes):
            rec = rec if l.recurrent else 0
            total += l.groups(s.lanes) * (src + rec + 1) + RING_LAYER_OVERHEAD
            total += RING_EVENT_DRAIN if src + rec else 0
            total += RING_RECURRENT_SWITCH if l.recurrent and not src else 0
        return total

    def cycles_formula(self) -> str:
        return (f"per step (the next step's input events arrive meanwhile): "
                f"sum_k [ceil(N_k / {self.shape.lanes}) * (S_k + R_k + 1) + {RING_LAYER_OVERHEAD}"
                f" + {RING_EVENT_DRAIN} if S_k + R_k > 0 + {RING_RECURRENT_SWITCH} if "
                f"layer k is recurrent and S_k = 0] + {STEP_OVERHEAD}; S_k = spikes into layer k this step (distinct input channels "
                f"for k = 0, else layer k-1's spikes), R_k = layer k's own spikes of the "
                f"previous step if it is recurrent, else 0")

    def clear_walk(self, layer) -> int:
        return layer.groups(self.shape.lanes) * (layer.d_max + 1)

    def event_bits(self) -> int:
        """Width of a spike-event list entry: a unit group and its lane mask."""
        return INDEX_BITS - (self.shape.lanes - 1).bit_length() + self.shape.lanes

    def memory_bits(self) -> dict[str, int]:
        """Fan-out weights and delays (as fifo), one ring of ``d_max+1`` slots of
        ``acc_bits`` per unit (a memory per lane), membranes, bias, scores, a spike-event
        list per lif layer, and the input bitmap plus the input event list (both
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
            if l.kind == "readout":
                bits["scores"] += memory_depth(g) * p * s.score_bits
            else:
                bits["spike_lists"] += memory_depth(g) * ev
        return bits

    def delay_storage(self) -> dict[str, int]:
        return {"ring_N_x_dmax_plus_1_x_acc_bits":
                sum(l.size * (l.d_max + 1) * l.acc_bits for l in self.shape.layers)}
