"""The cocotb test run inside the simulator by :func:`delayhw.sim.cosim.run_rtl`.

``cosim_top.v`` makes its own clock and streams its stimulus and outputs through files, so
Python awaits ``done`` once and then writes the run's counters to the JSON file named by
``+stats=FILE``: no Python runs per cycle.
"""

from __future__ import annotations

import json
import time

import cocotb
from cocotb.triggers import RisingEdge, with_timeout

CLOCK_NS = 10      # the period of cosim_top's clock


@cocotb.test()
async def run_stimulus(dut):
    max_cycles = int(cocotb.plusargs.get("max_cycles", 10**9))
    start = time.perf_counter()
    await with_timeout(RisingEdge(dut.done), (max_cycles + 16) * CLOCK_NS, "ns")
    wall = time.perf_counter() - start
    stats = {"cycles": int(dut.cycles.value), "out_count": int(dut.out_count.value),
             "status": int(dut.status.value), "wall_s": wall}
    with open(cocotb.plusargs["stats"], "w") as f:
        json.dump(stats, f)
