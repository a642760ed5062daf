"""The ``fifo`` scheme's cost model (its engine: :mod:`.fifo`)."""

from __future__ import annotations

from ..shape import LIF_LATENCY, STEP_OVERHEAD, memory_depth
from .cost import SchemeCost

#: Cycles of pipeline fill/drain and control per layer run (measured in
#: tests/test_gateware_core.py::test_cycles_per_step_matches_the_formula).
LAYER_OVERHEAD = 7 + LIF_LATENCY


class FifoCost(SchemeCost):
    """Clock-driven: every synapse of every layer is visited once per step
    (``sum_k ceil(N_k / lanes) * fan_in_k``) plus a fixed pipeline and control overhead per
    layer and per step; the spike counts do not matter."""

    cycles_note = ""
    lut_per_bit = (0.0, 0.0)        # the common rule of boards/fit.py was fitted on fifo

    def cycles_per_step(self, source_spikes=None, recurrent_spikes=None) -> int:
        s = self.shape
        return sum(l.groups(s.lanes) * l.fan_in + LAYER_OVERHEAD
                   for l in s.layers) + STEP_OVERHEAD

    def cycles_formula(self) -> str:
        return (f"per step (the next step's input events arrive meanwhile): "
                f"sum_k ceil(N_k / {self.shape.lanes}) * fan_in_k + {LAYER_OVERHEAD} * L + "
                f"{STEP_OVERHEAD}")

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
            if l.kind == "readout":
                bits["scores"] += g * p * s.score_bits
            else:
                bits["spike_bitmaps"] += memory_depth((2 if l.recurrent else 1) * l.groups(p)) * p
        return bits

    def delay_storage(self) -> dict[str, int]:
        return {"history_n_in_x_dmax_plus_1": sum(l.fan_in * (l.d_max + 1)
                                                  for l in self.shape.layers)}
