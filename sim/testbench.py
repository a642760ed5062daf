"""The one cocotb routine of delayhw's testbenches (:mod:`delayhw.sim.cosim_tb`,
:mod:`delayhw.sim.board_tb`): their Verilog tops make their own clock and stream through
files, so Python only awaits ``done`` and writes the run's counters as JSON to the file named
by ``+stats=FILE``; no Python runs per cycle."""

from __future__ import annotations

import json
import time

import cocotb
from cocotb.triggers import RisingEdge, Timer, with_timeout

from .clock import CLOCK_PERIOD_NS

#: Verilator: cycles between two looks at ``done``. delayhw's Verilator main loop
#: (sim/verilator_main.cpp) only evaluates a time slot where no callback can run; a
#: ``RisingEdge(done)`` would put a value-change callback in every slot, a timer is due only
#: when it fires. The counters stop at ``done``, so looking late only adds idle cycles at the
#: end (at most this many).
POLL_CYCLES = 4096


async def await_done(dut, default_max_cycles: int, counters: tuple[str, ...]) -> None:
    """Wait for ``dut.done`` (at most ``+max_cycles=N`` cycles, default
    ``default_max_cycles``, plus a margin), then write ``dut``'s ``counters``, the wall
    time (``wall_s``) and the simulator process's CPU time (``cpu_s``: a speed figure that
    does not depend on the machine's load) to ``+stats=FILE``."""
    max_cycles = int(cocotb.plusargs.get("max_cycles", default_max_cycles))
    start, cpu = time.perf_counter(), time.process_time()
    if cocotb.SIM_NAME.lower().startswith("verilator"):
        await _poll_done(dut, max_cycles + 16)
    else:       # event-driven simulators call a value-change callback only on a change
        await with_timeout(RisingEdge(dut.done), (max_cycles + 16) * CLOCK_PERIOD_NS, "ns")
    stats = {name: int(getattr(dut, name).value) for name in counters}
    stats["wall_s"] = time.perf_counter() - start
    stats["cpu_s"] = time.process_time() - cpu      # the simulator's own CPU time
    with open(cocotb.plusargs["stats"], "w") as f:
        json.dump(stats, f)


async def _poll_done(dut, max_cycles: int) -> None:
    """Return once ``dut.done`` is 1, looking every :data:`POLL_CYCLES` cycles; raise
    ``TimeoutError`` after ``max_cycles`` without it."""
    waited = 0
    while not int(dut.done.value):
        if waited >= max_cycles:
            raise TimeoutError(f"no done within {max_cycles} cycles")
        step = min(POLL_CYCLES, max_cycles - waited)
        await Timer(step * CLOCK_PERIOD_NS, "ns")
        waited += step
