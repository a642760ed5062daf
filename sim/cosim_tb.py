"""The cocotb test run inside the simulator by :func:`delayhw.sim.cosim.run_rtl`: awaits
``cosim_top.v``'s ``done`` and writes its counters (:func:`~delayhw.sim.testbench.await_done`)."""

from __future__ import annotations

import cocotb

from delayhw.sim.testbench import await_done


@cocotb.test()
async def run_stimulus(dut):
    await await_done(dut, 10**9, ("cycles", "out_count", "status"))
