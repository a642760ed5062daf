"""The cocotb test run inside the simulator by :mod:`delayhw.sim.board`: awaits
``board_sim.v``'s ``done`` (raised when the host writes the control file) and writes the cycle
count (:func:`~delayhw.sim.testbench.await_done`)."""

from __future__ import annotations

import cocotb

from delayhw.sim.testbench import await_done


@cocotb.test()
async def serve(dut):
    await await_done(dut, 10**12, ("cycles",))
