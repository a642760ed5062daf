"""The cocotb test run inside the simulator by :mod:`delayhw.sim.board`: ``board_sim.v``
bridges the UART to files and makes its own clock, so Python only awaits ``done`` (raised
when the host writes the control file) and writes the cycle count to ``+stats=FILE``."""

from __future__ import annotations

import json
import time

import cocotb
from cocotb.triggers import RisingEdge, with_timeout

CLOCK_NS = 10


@cocotb.test()
async def serve(dut):
    max_cycles = int(cocotb.plusargs.get("max_cycles", 10**12))
    start = time.perf_counter()
    await with_timeout(RisingEdge(dut.done), (max_cycles + 16) * CLOCK_NS, "ns")
    with open(cocotb.plusargs["stats"], "w") as f:
        json.dump({"cycles": int(dut.cycles.value), "wall_s": time.perf_counter() - start}, f)
