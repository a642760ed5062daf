"""delayhw's Verilator main loop (sim/verilator_main.cpp) keeps cocotb's schedule: timers
wake at their time, value-change and read-only callbacks see the design as the Verilog
defines it, writes reach the design, both where slots are skipped and where they are not.
Icarus runs the same testbench as the reference for the simulator semantics."""

import json
import math

import pytest

from delayhw.sim import runner

LOOP_TOP = """`timescale 1ns/1ps
module loop_top(poke, echo, count, pulse);
    input wire [7:0] poke /*verilator public_flat_rw*/;
    output wire [7:0] echo /*verilator public_flat_rd*/;
    output reg [31:0] count /*verilator public_flat_rd*/;
    output reg pulse /*verilator public_flat_rd*/;
    reg clk = 0;
    always #5 clk = ~clk;               // rising edges at 5, 15, 25, ... ns
    initial begin count = 0; pulse = 0; end
    always @(posedge clk) begin
        count <= count + 1;
        pulse <= count[3:0] == 4'd15;   // rises at the edge that makes count 16, 32, ...
    end
    assign echo = poke + 8'd1;
endmodule
"""


def count_before_slot(t_ns: int) -> int:
    """``count`` as a timer callback at ``t_ns`` sees it: the rising edges before ``t_ns``
    (callbacks of a slot run before the slot is evaluated)."""
    return max(0, math.ceil((t_ns - 5) / 10))


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_main_loop_keeps_cocotbs_schedule(sim, tmp_path):
    build = runner.cached_build("loop-top", sim, {"loop_top.v": LOOP_TOP}, "loop_top", {},
                                {"what": "tests/test_verilator_main.py"})
    stats = tmp_path / "seen.json"
    runner.run_test(build, "verilator_main_tb", "loop_top", tmp_path, [f"+stats={stats}"],
                    stats)
    seen = json.loads(stats.read_text())
    times = [t for t, _ in seen["timers"]]
    assert times == [1000, 1007, 1020, 1021, 2011, 2014, times[-1]], times
    for t, count in seen["timers"]:
        assert count == count_before_slot(t), (t, count)
    # pulse rises at the edge whose count becomes 16k (the edge at 5 + 10 * (16k - 1) ns)
    first = next(k for k in range(1, 1000) if 5 + 10 * (16 * k - 1) > 2014)
    assert seen["edges"] == [[5 + 10 * (16 * k - 1), 16 * k] for k in (first, first + 1,
                                                                        first + 2)]
    edge_t = seen["edges"][-1][0]
    assert seen["echo"] == [edge_t + 2, 42]
    assert seen["echo_after_timer"] == 100
    assert times[-1] == edge_t + 2 + 3 + 10 + 5000


def vcd_rising_edges(text: str, scope: str, name: str) -> int:
    """Rising edges of the 1-bit signal ``name`` of ``scope`` in a VCD trace."""
    code, scopes = None, []
    lines = iter(text.splitlines())
    for line in lines:
        words = line.split()
        if words[:1] == ["$scope"]:
            scopes.append(words[2])
        elif words[:1] == ["$upscope"]:
            scopes.pop()
        elif words[:1] == ["$var"] and scopes[-1:] == [scope] and words[4] == name:
            code = words[3]
        elif words[:1] == ["$enddefinitions"]:
            break
    assert code is not None, f"{scope}.{name} not in the trace"
    return sum(1 for line in lines if line == "1" + code)


def test_a_waveform_run_traces_every_clock_edge(tmp_path):
    """Tracing dumps every time slot, the ones only evaluated included: the trace's clock
    edges cover the run's counted cycles (after the 4 reset cycles) plus at most the poll's
    idle look."""
    from delayhw import netgen
    from delayhw.sim import cosim
    from delayhw.sim.testbench import POLL_CYCLES
    model, spikes = netgen.random_case(3, batch=1, steps=6)
    run = cosim.run_rtl(model, spikes, sim="verilator", waves=True, workdir=tmp_path)
    traces = sorted(tmp_path.rglob("*.vcd"))
    assert len(traces) == 1
    edges = vcd_rising_edges(traces[0].read_text(), "cosim_top", "clk")
    assert run.cycles + 4 <= edges <= run.cycles + 4 + POLL_CYCLES + 1, (edges, run.cycles)
