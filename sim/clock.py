"""The simulation clock, defined once: its period here is what the Verilog tops
(``cosim_top.v``, ``board_sim.v``, given it as the parameter ``CLOCK_PERIOD_NS``), the
cocotb testbenches (their time-outs) and amaranth.sim (:mod:`delayhw.gateware.pysim`) use.
Pure Python, no simulator imported."""

from __future__ import annotations

#: period of the simulated clock, in nanoseconds (an even number: each half is whole)
CLOCK_PERIOD_NS = 10
#: the Verilog tops' ``timescale`` (unit, precision)
TIMESCALE = ("1ns", "1ps")
#: the period in seconds, for amaranth.sim's ``add_clock``
CLOCK_PERIOD_S = CLOCK_PERIOD_NS * 1e-9


def verilog_parameters() -> dict[str, int]:
    """The clock's parameters of a Verilog top."""
    return {"CLOCK_PERIOD_NS": CLOCK_PERIOD_NS}
