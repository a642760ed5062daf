"""The LIF arithmetic of DESIGN.md section 3 for one lane, combinational."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .shape import LayerShape


class LifUnit(wiring.Component):
    """One neuron update, exactly as the contract states it::

        u = ((v * beta + 2**(f_bits-1)) >> f_bits) + i_syn + bias    # arithmetic shift
        u = clamp(u, -2**(v_bits-1), 2**(v_bits-1) - 1)
        lif:     spike = u >= threshold; v_next = (u - threshold | 0 if reset_zero) if spike else u
        readout: spike = 0;              v_next = u

    Parameters come from a :class:`LayerShape`: ``f_bits`` and ``v_bits`` are fixed,
    ``beta``, ``threshold`` and ``reset_zero`` are inputs (run-time configurable).
    ``i_syn`` must already be exact (``acc_bits`` wide), so nothing can overflow here.
    """

    def __init__(self, shape: LayerShape):
        self._shape = shape
        super().__init__({
            "v": In(signed(shape.v_bits)),
            "i_syn": In(signed(shape.acc_bits)),
            "bias": In(signed(shape.w_bits)),
            "beta": In(unsigned(shape.f_bits + 1)),
            "threshold": In(signed(shape.v_bits)),
            "reset_zero": In(1),
            "v_next": Out(signed(shape.v_bits)),
            "spike": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        s = self._shape
        vmin, vmax = s.v_range
        decayed = Signal(signed(s.v_bits + 2))
        m.d.comb += decayed.eq((self.v * self.beta + (1 << (s.f_bits - 1))) >> s.f_bits)
        u_wide = Signal(signed(max(s.v_bits + 2, s.acc_bits, s.w_bits) + 2))
        m.d.comb += u_wide.eq(decayed + self.i_syn + self.bias)
        u = Signal(signed(s.v_bits))
        m.d.comb += u.eq(Mux(u_wide < vmin, vmin, Mux(u_wide > vmax, vmax, u_wide)))
        if s.kind == "lif":
            m.d.comb += self.spike.eq(u >= self.threshold)
            m.d.comb += self.v_next.eq(Mux(self.spike, Mux(self.reset_zero, 0, u - self.threshold), u))
        else:
            m.d.comb += self.v_next.eq(u)
        return m
