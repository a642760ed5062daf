"""The LIF unit at the rounding and saturation edges, against the equations of section 3
written out here with Python integers (floor division is the arithmetic shift)."""

import itertools

import pytest
from amaranth.sim import Simulator

from delayhw.gateware.lif import LifUnit
from delayhw.spec import LayerShape


def spec_update(v, i_syn, bias, beta, f_bits, v_bits, threshold, reset_zero, kind):
    vmin, vmax = -(2 ** (v_bits - 1)), 2 ** (v_bits - 1) - 1
    u = (v * beta + 2 ** (f_bits - 1)) // 2 ** f_bits + i_syn + bias
    u = min(max(u, vmin), vmax)
    if kind == "lif" and u >= threshold:
        return (0 if reset_zero else u - threshold), 1
    return u, 0


def edges(bits, signed=True):
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    return sorted(x for x in {lo, lo + 1, -3, -2, -1, 0, 1, 2, hi - 1, hi} if lo <= x <= hi)


SHAPES = [
    LayerShape("lif", size=1, n_in=3, w_bits=4, v_bits=4, f_bits=1, d_max=0, recurrent=False, bias=True),
    LayerShape("lif", size=1, n_in=100, w_bits=8, v_bits=12, f_bits=4, d_max=2, recurrent=True, bias=True),
    LayerShape("lif", size=1, n_in=5, w_bits=16, v_bits=32, f_bits=16, d_max=1, recurrent=False, bias=True),
    LayerShape("readout", size=1, n_in=7, w_bits=6, v_bits=10, f_bits=3, d_max=0, recurrent=False, bias=True),
    LayerShape("readout", size=1, n_in=2, w_bits=2, v_bits=32, f_bits=16, d_max=0, recurrent=False, bias=True),
]


def run_pipelined(dut, cases, enable):
    """Present ``cases`` to ``dut`` one per enabled cycle (``enable`` is a repeating pattern
    of ``en``; a disabled cycle presents another, wrong, case) and return ``(v_next, spike)``
    of each case, read ``dut.latency`` enabled cycles after it was presented."""
    inputs = (dut.v, dut.i_syn, dut.bias, dut.beta, dut.threshold, dut.reset_zero)
    got = []

    async def bench(ctx):
        presented = []          # the case of each enabled cycle (None while flushing)
        cycle = 0
        while len(got) < len(cases):
            en = enable[cycle % len(enable)]
            n = len(presented)
            case = cases[n] if n < len(cases) else None
            for port, value in zip(inputs, case if en and case else cases[(n * 5 + 3) % len(cases)]):
                ctx.set(port, value)
            ctx.set(dut.en, en)
            await ctx.tick()
            cycle += 1
            if en:
                presented.append(case)
                if len(presented) >= dut.latency and presented[-dut.latency] is not None:
                    got.append((ctx.get(dut.v_next), ctx.get(dut.spike)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.kind}-v{s.v_bits}-f{s.f_bits}-w{s.w_bits}")
@pytest.mark.parametrize("stalls", [False, True], ids=["streaming", "stalled"])
def test_lif_unit_matches_the_equations_at_the_edges(shape, stalls):
    dut = LifUnit(shape)
    f = shape.f_bits
    vmax = 2 ** (shape.v_bits - 1) - 1
    betas = sorted({0, 1, 2 ** (f - 1), 2 ** f - 1, 2 ** f})
    cases = list(itertools.product(edges(shape.v_bits), edges(shape.acc_bits), edges(shape.w_bits),
                                   betas, sorted({1, 2, vmax}), (0, 1)))
    if stalls:       # every input changes each cycle; en drops in an irregular pattern
        cases = cases[::7]
    enable = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1] if stalls else [1]
    got = run_pipelined(dut, cases, enable)
    want = [spec_update(v, i_syn, bias, beta, f, shape.v_bits, threshold, reset_zero, shape.kind)
            for v, i_syn, bias, beta, threshold, reset_zero in cases]
    assert len(cases) > (100 if stalls else 1000)
    mismatches = [(c, g, w) for c, g, w in zip(cases, got, want) if g != w]
    assert not mismatches, mismatches[:5]


def test_spec_update_itself_on_hand_computed_values():
    # (-5*3 + 2) >> 2 = -13 >> 2 = -4 (floor), + 0 -> -4, no spike under threshold 1? -4 < 1
    assert spec_update(-5, 0, 0, 3, 2, 8, 1, 0, "lif") == (-4, 0)
    # (7*16 + 8) >> 4 = 7; 7 + 100 = 107 -> clamp 7 (v_bits 4); spike at 5: subtract -> 2
    assert spec_update(7, 100, 0, 16, 4, 4, 5, 0, "lif") == (2, 1)
    assert spec_update(7, 100, 0, 16, 4, 4, 5, 1, "lif") == (0, 1)
    # readout clamps at the bottom: -8 - 100 -> -8
    assert spec_update(-8, -100, 0, 16, 4, 4, 1, 0, "readout") == (-8, 0)
