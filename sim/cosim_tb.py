"""The cocotb test run inside the simulator by :func:`delayhw.sim.cosim.run_rtl`.

It starts a simulator-side clock (no Python per cycle), awaits ``done`` once, and writes the
run's counters to the JSON file named by ``+stats=FILE``. The stimulus and output streams go
through files handled by ``cosim_top.v`` itself.
"""

from __future__ import annotations

import json
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout

CLOCK_NS = 10


@cocotb.test()
async def run_stimulus(dut):
    max_cycles = int(cocotb.plusargs.get("max_cycles", 10**9))
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    start = time.perf_counter()
    await with_timeout(RisingEdge(dut.done), (max_cycles + 16) * CLOCK_NS, "ns")
    wall = time.perf_counter() - start
    stats = {"cycles": int(dut.cycles.value), "out_count": int(dut.out_count.value),
             "status": int(dut.status.value), "wall_s": wall}
    with open(cocotb.plusargs["stats"], "w") as f:
        json.dump(stats, f)
