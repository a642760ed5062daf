"""The ``fifo`` scheme's cost model (its engine: :mod:`.fifo`)."""

from __future__ import annotations

from delayhw.spec import LayerKind

from ..shape import LIF_LATENCY, STEP_OVERHEAD, memory_depth
from .cost import SchemeCost

#: Cycles from a synapse's issue to its group's write-back (fetch, taps, sums, LifUnit), and
#: from the last write-back to the cycle the step has finished (emit, idle, STEP marker)
#: (measured in tests/test_gateware_core.py::test_cycles_per_step_matches_the_formula and
#: tests/test_gateware_overlap.py)
FIFO_WRITE_LATENCY = 4 + LIF_LATENCY
FIFO_STEP_TAIL = 3 + STEP_OVERHEAD


def fifo_step_cycles(layers, lanes: int) -> int:
    """Cycles of a ``fifo`` step: every layer starts with the step (cycle 0) and sweeps its
    synapses group by group, one per cycle; the first pass of layer ``k > 0`` issues source
    ``i`` (a unit of layer ``k-1``) no earlier than the cycle after layer ``k-1`` has
    written the group of ``i`` (``FifoLayer``'s ``src.ready``), and its later passes never
    wait. A group is written :data:`FIFO_WRITE_LATENCY` cycles after its last synapse was
    issued; the step ends :data:`FIFO_STEP_TAIL` cycles after the last layer's last write."""
    lane_bits = (lanes - 1).bit_length()
    source = None           # (first write, cycles between writes) of the feeding layer
    for layer in layers:
        t = 0               # issue cycle of the first pass's latest source (start = 0)
        for i in range(layer.fan_in):
            t += 1
            if source is not None and i < layer.n_in:
                t = max(t, source[0] + (i >> lane_bits) * source[1] + 1)
        source = (t + FIFO_WRITE_LATENCY, layer.fan_in)
    return source[0] + (layers[-1].groups(lanes) - 1) * source[1] + FIFO_STEP_TAIL


class FifoCost(SchemeCost):
    """Clock-driven: every synapse of every layer is visited once per step, and the layers
    overlap (:func:`fifo_step_cycles`): about ``sum_k ceil(N_k / lanes) * fan_in_k`` plus the
    pipeline and control overhead of the last layer, less what the first pass of each layer
    over its source hides; the spike counts do not matter."""

    cycles_note = ""
    lut_per_bit = (0.0, 0.0)        # the common rule of boards/fit.py was fitted on fifo

    def cycles_per_step(self, source_spikes=None, recurrent_spikes=None) -> int:
        return fifo_step_cycles(self.shape.layers, self.shape.lanes)

    def cycles_formula(self) -> str:
        lanes = self.shape.lanes
        return (f"per step (the next step's input events arrive meanwhile; layers overlap): "
                f"W_last + {FIFO_STEP_TAIL}, W_k = w_k + (ceil(N_k / {lanes}) - 1) * "
                f"fan_in_k the cycle layer k writes its last group, w_k = t_k(fan_in_k - 1) + "
                f"{FIFO_WRITE_LATENCY} its first, t_k(i) = max(t_k(i-1) + 1, w_(k-1) + "
                f"floor(i / {lanes}) * fan_in_(k-1) + 1 if i is a unit of layer k-1) "
                f"the cycle layer k issues source i of its first pass, t_k(-1) = 0")

    def clear_walk(self, layer) -> int:
        g = layer.groups(self.shape.lanes)
        return max(g * layer.fan_in, (2 if layer.recurrent else 1) * g)

    def memory_bits(self) -> dict[str, int]:
        """Weights and delays, one spike history of ``d_max`` bits per source, membranes,
        bias, scores, spike bitmaps (two banks if recurrent) and the input bitmap (two banks
        of ``n_inputs``)."""
        s = self.shape
        p = s.lanes
        bits = {"synapses": 0, "delay_lines": 0, "membranes": 0, "bias": 0,
                "scores": 0, "spike_bitmaps": 0, "input_bitmap": 2 * memory_depth(s.n_inputs)}
        for l in s.layers:
            g = memory_depth(l.groups(p))
            bits["synapses"] += s.synapse_bits(l)
            bits["delay_lines"] += memory_depth(l.fan_in) * l.d_max if l.d_max else 0
            bits["membranes"] += g * p * l.v_bits
            bits["bias"] += g * p * l.w_bits if l.bias else 0
            if l.kind is LayerKind.READOUT:
                bits["scores"] += g * p * s.score_bits
            else:
                bits["spike_bitmaps"] += memory_depth((2 if l.recurrent else 1) * l.groups(p)) * p
        return bits

    def delay_storage(self) -> dict[str, int]:
        return {"history_n_in_x_dmax_plus_1": sum(l.fan_in * (l.d_max + 1)
                                                  for l in self.shape.layers)}
