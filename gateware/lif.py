"""The LIF arithmetic of docs/design.md section 3 for one lane, pipelined."""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from delayhw.spec import LayerKind, LayerShape

from .shape import LIF_LATENCY


class LifUnit(wiring.Component):
    """One neuron update, exactly as the contract states it::

        u = ((v * beta + 2**(f_bits-1)) >> f_bits) + i_syn + bias    # arithmetic shift
        u = clamp(u, -2**(v_bits-1), 2**(v_bits-1) - 1)
        lif:     spike = u >= threshold; v_next = (u - threshold | 0 if reset_zero) if spike else u
        readout: spike = 0;              v_next = u

    Parameters come from a :class:`LayerShape`: ``f_bits`` and ``v_bits`` are fixed,
    ``beta``, ``threshold`` and ``reset_zero`` are inputs (run-time configurable).
    ``i_syn`` must already be exact (``acc_bits`` wide), so nothing can overflow here.

    Pipelined, one update per cycle: ``v_next``/``spike`` are the update of the inputs
    presented :attr:`latency` enabled cycles earlier (every input, parameters included,
    travels with its update). ``en`` low freezes every stage, so a stall loses nothing.
    Stages: register the inputs (and add ``i_syn + bias``) -> multiply ``v * beta`` ->
    round and shift -> add and clamp -> compare and reset. The input register lets the
    multiplier (a DSP block) start from flip-flops rather than from a block RAM's output.
    """

    #: enabled cycles from the inputs to ``v_next``/``spike``
    latency = LIF_LATENCY

    def __init__(self, shape: LayerShape):
        self._shape = shape
        super().__init__({
            "en": In(1, init=1),
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

        def carried(value, n: int) -> Signal:
            """``value`` delayed by ``n`` enabled cycles (the parameters that ride along)."""
            for k in range(n):
                reg = Signal.like(value, name=f"{value.name}_{k + 1}")
                with m.If(self.en):
                    m.d.sync += reg.eq(value)
                value = reg
            return value

        # 1: inputs registered; the synaptic current and bias summed
        v, beta = carried(self.v, 1), carried(self.beta, 1)
        current1 = Signal(signed(max(s.acc_bits, s.w_bits) + 1))
        # 2: multiply
        product = Signal(signed(s.v_bits + s.f_bits + 2))
        current2 = Signal.like(current1)
        # 3: round and shift (floor: arithmetic)
        decayed = Signal(signed(s.v_bits + 2))
        current3 = Signal.like(current1)
        # 4: add and clamp
        u = Signal(signed(s.v_bits))
        u_wide = Signal(signed(max(s.v_bits + 2, current1.shape().width) + 1))
        m.d.comb += u_wide.eq(decayed + current3)
        # the clamp as a bit test: u_wide fits v_bits iff its bits from v_bits-1 up agree
        top = u_wide[s.v_bits - 1:]
        clamped = Mux((top == 0) | top.all(), u_wide[:s.v_bits], Mux(u_wide[-1], vmin, vmax))
        with m.If(self.en):
            m.d.sync += [current1.eq(self.i_syn + self.bias),
                         product.eq(v * beta), current2.eq(current1),
                         decayed.eq((product + (1 << (s.f_bits - 1))) >> s.f_bits),
                         current3.eq(current2),
                         u.eq(clamped)]
        # 5: compare and reset
        if s.kind is LayerKind.LIF:
            threshold = carried(self.threshold, 4)
            reset_zero = carried(self.reset_zero, 4)
            # one subtraction gives both the verdict (its sign) and the subtractive reset
            # (u - threshold fits v_bits when u >= threshold >= 1)
            diff = Signal(signed(s.v_bits + 1))
            m.d.comb += diff.eq(u - threshold)
            fires = ~diff[-1]
            with m.If(self.en):
                m.d.sync += [self.spike.eq(fires),
                             self.v_next.eq(Mux(fires, Mux(reset_zero, 0, diff[:s.v_bits]), u))]
        else:
            with m.If(self.en):
                m.d.sync += self.v_next.eq(u)
        return m
