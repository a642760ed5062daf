"""The one cocotb routine of delayhw's testbenches (:mod:`delayhw.sim.cosim_tb`,
:mod:`delayhw.sim.board_tb`): their Verilog tops make their own clock and stream through
files, so Python only awaits ``done`` and writes the run's counters as JSON to the file named
by ``+stats=FILE``; no Python runs per cycle."""

from __future__ import annotations

import json
import time

import cocotb
from cocotb.triggers import RisingEdge, with_timeout

from .clock import CLOCK_PERIOD_NS


async def await_done(dut, default_max_cycles: int, counters: tuple[str, ...]) -> None:
    """Wait for ``dut.done`` (at most ``+max_cycles=N`` cycles, default
    ``default_max_cycles``, plus a margin), then write ``dut``'s ``counters``, the wall
    time (``wall_s``) and the simulator process's CPU time (``cpu_s``: a speed figure that
    does not depend on the machine's load) to ``+stats=FILE``."""
    max_cycles = int(cocotb.plusargs.get("max_cycles", default_max_cycles))
    start, cpu = time.perf_counter(), time.process_time()
    await with_timeout(RisingEdge(dut.done), (max_cycles + 16) * CLOCK_PERIOD_NS, "ns")
    stats = {name: int(getattr(dut, name).value) for name in counters}
    stats["wall_s"] = time.perf_counter() - start
    stats["cpu_s"] = time.process_time() - cpu      # the simulator's own CPU time
    with open(cocotb.plusargs["stats"], "w") as f:
        json.dump(stats, f)
