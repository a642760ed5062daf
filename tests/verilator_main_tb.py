"""cocotb test module of tests/test_verilator_main.py (not a pytest module): exercises each
kind of callback the main loop schedules on ``loop_top`` and records what it saw as JSON in
``+stats=FILE``; the pytest test checks the records against the Verilog's definition."""

import json

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time


def _now() -> int:
    return int(get_sim_time("ns"))


@cocotb.test()
async def record_callbacks(dut):
    seen = {"timers": [], "edges": []}
    await Timer(1000, "ns")                     # one long timer: slots with no callback
    seen["timers"].append([_now(), int(dut.count.value)])
    for step in (7, 13, 1, 990, 3):             # timers on and between clock edges
        await Timer(step, "ns")
        seen["timers"].append([_now(), int(dut.count.value)])
    for _ in range(3):                          # value-change callbacks
        await RisingEdge(dut.pulse)
        await ReadOnly()
        seen["edges"].append([_now(), int(dut.count.value)])
    await Timer(2, "ns")
    dut.poke.value = 41                         # a write, then the read-only phase
    await ReadOnly()
    seen["echo"] = [_now(), int(dut.echo.value)]
    await Timer(3, "ns")
    dut.poke.value = 99                         # a write from a timer's callback
    await Timer(10, "ns")
    seen["echo_after_timer"] = int(dut.echo.value)
    await Timer(5000, "ns")
    seen["timers"].append([_now(), int(dut.count.value)])
    with open(cocotb.plusargs["stats"], "w") as f:
        json.dump(seen, f)
