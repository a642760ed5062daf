"""Gate-level co-simulation (docs/netlist.md): the board top synthesised as `delayhw build`
synthesises it, simulated with the vendor cell models through its UART and compared with the
golden model; a corrupted netlist is caught.

Default suite: the script and the design are the build's, the cell libraries compile, delayhw's
own MULT18X18D model against Python's products, and one small network on the iCEBreaker
netlist in Icarus (good, then with one LUT inverted). The demo model on both families at the
boards' own baud rates, Verilator, `build --verify` and `regress --netlist` are slow."""

import re
import subprocess

import numpy as np
import pytest

from delayhw import Inputs, golden, load_result, netgen, save_model
from delayhw.boards.build import tool_env
from delayhw.boards.targets import get_board
from delayhw.cli import main
from delayhw.errors import DelayhwError
from delayhw.gateware.protocol import first_difference
from delayhw.gateware.shape import CoreShape
from delayhw.sim import netlist
from delayhw.sim.tools import icarus_available

needs_icarus = pytest.mark.skipif(not icarus_available(),
                                  reason="iverilog is not installed (.ci/run installs it)")
#: the small network of the default-suite runs (test_boards.py's): 4 -> 4 lif -> 4 readout
PARAMS = netgen.NetParams(max_inputs=4, max_size=4, max_layers=2, d_max=(0, 4))
#: a baud rate the iCEBreaker's 30 MHz clock divides by 4 exactly (accepted by `delayhw build
#: --baud`): the netlist of that build, 2.5x fewer cycles per UART byte than its default
FAST_BAUD = 7_500_000


def small_case(batch=2, steps=6):
    return netgen.random_case(7, PARAMS, batch=batch, steps=steps)


# ----------------------------------------------------------------------------- no simulator


def _script_lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f"])
def test_the_synthesis_script_is_the_builds(name):
    """The build plan's own Yosys script (Amaranth's top.ys with the board's synth options),
    write_json replaced by write_verilog; only a cell count added."""
    board = get_board(name)
    model, _ = small_case()
    design = netlist.Design.of(model, board)
    plan = board.platform().prepare(board.top(design.shape, model, board.clocking()),
                                    name="top", synth_opts=board.synth_opts)
    ys = plan.files["top.ys"]
    build_lines = _script_lines(ys if isinstance(ys, str) else ys.decode())
    ours = _script_lines(netlist.synth_script(board.fabric.family, board.synth_opts, "top"))
    assert [l for l in build_lines if not l.startswith("write_json")] == \
        [l for l in ours if not l.startswith(("write_verilog", "tee "))]
    assert "write_verilog -noattr netlist.v" in ours
    assert board.synth_opts in " ".join(ours)


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f", "orangecrab-25f"])
def test_the_design_is_the_board_top_the_build_places(name):
    board = get_board(name)
    model, _ = small_case()
    design = netlist.Design.of(model, board, lanes=2, baud=500_000)
    clock = board.clocking()
    placed = board.top(board.core_shape(CoreShape.from_model(model, 2)), model, clock, 500_000)
    top = design.top()
    placed._MustUse__silence = top._MustUse__silence = True     # compared, never elaborated
    assert (top.shape, top.divisor, top.model) == (placed.shape, placed.divisor, placed.model)
    assert design.shape.memory == board.memory and design.synth_opts == board.synth_opts
    assert design.clock_hz == clock.hz
    with pytest.raises(DelayhwError, match="baud"):
        netlist.Design.of(model, board, baud=7_777_777)


@needs_icarus
@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_the_cell_libraries_compile_in_icarus(family, tmp_path):
    (tmp_path / "cells.v").write_text(netlist.cell_models(family))
    proc = subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "x"),
                           str(tmp_path / "cells.v")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "`include" not in (tmp_path / "cells.v").read_text()


MULT_TB = """
module tb;
    reg [17:0] a, b; reg sa, sb;
    wire [35:0] p;
    MULT18X18D m (
        %s, %s, %s, .SIGNEDA(sa), .SIGNEDB(sb), .SOURCEA(1'b0), .SOURCEB(1'b0), %s);
    integer f, r, k;
    initial begin
        f = $fopen("cases.txt", "r");
        for (k = 0; k < %d; k = k + 1) begin
            r = $fscanf(f, "%%h %%h %%d %%d\\n", a, b, sa, sb);
            #1 $display("%%h", p);
        end
        $finish;
    end
endmodule
"""


#: a 512 x 36 memory written with 9-bit byte enables, read at another address: Yosys maps it to
#: one DP16KD in its pseudo dual-port mode (DATA_WIDTH 36)
WIDE_MEMORY = """
module wide(input clk, input [3:0] we, input [8:0] wa, input [35:0] wd, input [8:0] ra,
            output reg [35:0] rd);
    reg [35:0] mem [0:511];
    integer i;
    always @(posedge clk) begin
        for (i = 0; i < 4; i = i + 1)
            if (we[i]) mem[wa][9 * i +: 9] <= wd[9 * i +: 9];
        rd <= mem[ra];
    end
endmodule
"""
WIDE_TB = """
module tb;
    reg clk = 0; reg [3:0] we; reg [8:0] wa, ra; reg [35:0] wd;
    wire [35:0] rd;
    wide dut (.clk(clk), .we(we), .wa(wa), .wd(wd), .ra(ra), .rd(rd));
    integer f, r, k;
    initial begin
        f = $fopen("stim.txt", "r");
        for (k = 0; k < %d; k = k + 1) begin
            r = $fscanf(f, "%%h %%h %%h %%h\\n", we, wa, wd, ra);
            #1 clk = 1; #1 clk = 0;
            $display("%%h", rd);
        end
        $finish;
    end
endmodule
"""


@needs_icarus
def test_own_dp16kd_model_in_yosys_36_bit_mode(tmp_path):
    """delayhw's DP16KD model on the netlist Yosys makes of a 512 x 36 memory with byte enables
    (its pseudo dual-port, 36-bit mode), against a Python memory: random byte-enabled writes,
    reads of other addresses, every read checked."""
    (tmp_path / "wide.v").write_text(WIDE_MEMORY)
    subprocess.run([tool_env()["YOSYS"], "-q", "-p", "read_verilog wide.v; "
                    "synth_ecp5 -top wide; write_verilog -noattr net.v"],
                   cwd=tmp_path, check=True, capture_output=True)
    net = (tmp_path / "net.v").read_text()
    assert "DP16KD" in net and ".DATA_WIDTH_A(32'd36)" in net and ".DATA_WIDTH_B(32'd36)" in net
    rng = np.random.default_rng(5)
    n = 600
    we = rng.integers(0, 16, n)
    wa = rng.integers(0, 16, n)                    # few addresses: bytes overwritten often
    ra = (wa + rng.integers(1, 16, n)) % 16        # never the address written in that cycle
    wd = [int(x) for x in rng.integers(0, 1 << 36, n, dtype=np.uint64)]
    (tmp_path / "stim.txt").write_text("".join(f"{e:x} {a:x} {d:x} {r:x}\n"
                                               for e, a, d, r in zip(we, wa, wd, ra)))
    (tmp_path / "tb.v").write_text(WIDE_TB % n)
    (tmp_path / "cells.v").write_text(netlist.cell_models("ecp5"))
    subprocess.run(["iverilog", "-g2005", "-o", "tb", "tb.v", "net.v", "cells.v"],
                   cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", "tb"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout.split()
    mem, expected = [0] * 512, []
    for e, a, d, r in zip(we, wa, wd, ra):
        expected.append(mem[r])
        for byte in range(4):
            if e >> byte & 1:
                field = 0x1FF << (9 * byte)
                mem[a] = (mem[a] & ~field) | (d & field)
    assert [int(x, 16) for x in out] == expected


@needs_icarus
def test_own_mult18x18d_model_multiplies_as_the_data_sheet_says(tmp_path):
    """delayhw's MULT18X18D model (the wheel has none) against Python's products: unsigned,
    signed and mixed operands at the corners and at random."""
    rng = np.random.default_rng(3)
    corners = [0, 1, 0x1FFFF, 0x20000, 0x3FFFF, 0x2AAAA]
    cases = [(a, b, sa, sb) for a in corners for b in corners for sa in (0, 1) for sb in (0, 1)]
    cases += [(int(a), int(b), int(s), int(t)) for a, b, s, t in
              zip(rng.integers(0, 1 << 18, 200), rng.integers(0, 1 << 18, 200),
                  rng.integers(0, 2, 200), rng.integers(0, 2, 200))]
    (tmp_path / "cases.txt").write_text("".join(f"{a:x} {b:x} {sa} {sb}\n"
                                                for a, b, sa, sb in cases))
    ports = [", ".join(f".A{i}(a[{i}])" for i in range(18)),
             ", ".join(f".B{i}(b[{i}])" for i in range(18)),
             ", ".join(f".C{i}(1'b0)" for i in range(18))]
    outs = ", ".join(f".P{i}(p[{i}])" for i in range(36))
    (tmp_path / "tb.v").write_text(MULT_TB % (*ports, outs, len(cases)))
    (tmp_path / "cells.v").write_text(netlist.cell_models("ecp5"))
    subprocess.run(["iverilog", "-g2005", "-o", "tb", "tb.v", "cells.v"], cwd=tmp_path,
                   check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", "tb"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout.split()

    def value(x, signed):
        return x - (1 << 18) if signed and x >> 17 else x

    expected = [(value(a, sa) * value(b, sb)) & ((1 << 36) - 1) for a, b, sa, sb in cases]
    assert [int(x, 16) for x in out] == expected


def test_the_wheel_still_has_no_model_of_the_cells_delayhw_models_or_refuses():
    """delayhw's own models replace black boxes only, never a vendor model: when a wheel ships
    a model of one of these cells, this fails and delayhw's can go."""
    for family, (library, _) in netlist.CELL_LIBRARIES.items():
        wheel = netlist._inline_includes(netlist.yosys_share() / library, set())
        own = netlist.cell_models(family).split("\n")
        names = set(netlist.UNMODELLED.get(family, ()))
        if family in netlist.OWN_MODELS:
            from importlib import resources
            names |= set(re.findall(r"^module (\w+)", resources.files("delayhw.sim").joinpath(
                netlist.OWN_MODELS[family]).read_text(), re.M))
        for name in names:
            body = re.search(rf"^module {name}\b(.*?)^endmodule", wheel, re.S | re.M)
            assert body is None or not re.search(r"\b(always|assign|initial)\b", body[1]), name
            assert sum(line.startswith(f"module {name}") for line in own) <= 1, name


def test_a_netlist_with_an_unmodelled_cell_is_refused_by_name(tmp_path):
    import json
    model, _ = small_case()
    design = netlist.Design.of(model, get_board("ulx3s-85f"))
    (tmp_path / "stat.json").write_text(json.dumps(
        {"design": {"num_cells_by_type": {"LUT4": 10, "PDPW16KD": 1}}}))
    fake = netlist.Netlist(design, tmp_path, True, 0.0)
    with pytest.raises(DelayhwError,
                       match="ulx3s-85f: the netlist uses PDPW16KD.*no simulation model"):
        netlist.build(fake, "icarus")


def test_cosim_netlist_refusals(tmp_path, capsys):
    model, spikes = small_case()
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes).save(tmp_path / "in.npz")
    base = ["cosim", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"), "--out",
            str(tmp_path / "r.npz")]
    for extra, message in [(["--netlist", "nosuchboard"], "not a known board"),
                           (["--samples", "2"], "--samples: only with --netlist"),
                           (["--netlist", "icebreaker", "--ready-prob", "0.5"], "--ready-prob"),
                           (["--netlist", "icebreaker", "--baud", "7777777"], "baud")]:
        assert main(base + extra) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r.npz").exists()
    m = ["build", str(tmp_path / "m.npz"), "--board", "icebreaker", "-o", str(tmp_path / "b")]
    assert main(m + ["--verify", "2"]) == 2
    assert "--input" in capsys.readouterr().err
    Inputs(spikes[:, :, :2]).save(tmp_path / "narrow.npz")
    assert main(m + ["--verify", "2", "--input", str(tmp_path / "narrow.npz")]) == 2
    assert "narrow.npz" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_build_verify_adds_the_netlist_check_to_the_report(tmp_path, monkeypatch, capsys):
    """`build --verify N --input X`: the check runs on the design built (same board, scheme,
    lanes, baud, clock, synth options) with the first N samples; its outcome goes into
    report.json and report.txt; a difference exits 1 (the tools and the simulation faked)."""
    import json

    import delayhw.cli.boards as cli_boards
    from delayhw.boards import build as build_mod
    model, spikes = small_case(batch=5)
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes).save(tmp_path / "in.npz")

    def fake_build(model, board, directory, **kwargs):
        report = {"family": "ice40", "board": board.name, "device": "iCE40UP5K",
                  "layers": "x", "scheme": "fifo", "lanes": 2, "fmax_mhz": 30.0,
                  "clock_mhz": 30.0, "timing_met": True, "cycles_per_step": 10,
                  "samples_per_s": 1.0, "steps_per_sample": 100, "baud": FAST_BAUD,
                  "uart_divisor": 4, "link_samples_per_s": 1.0, "link_activity": 0.05,
                  "link_bytes_per_sample": {"host_to_board": 1, "board_to_host": 1},
                  "bitstream": "top.bin", "resources": {}}
        (directory / "report.json").write_text(json.dumps(report))
        return report
    seen = {}

    def fake_check(design, inputs, **kwargs):
        seen.update(design=design, samples=inputs.spikes.shape[0], **kwargs)
        return {"board": design.board.name, "sim": kwargs["sim"], "samples": 3, "equal": False,
                "first_difference": "sample 1, step 2, layer 0, unit 3: golden spike 1, "
                                    "netlist spike 0", "result": None}
    monkeypatch.setattr(build_mod, "build", fake_build)
    monkeypatch.setattr(cli_boards, "netlist_check", fake_check)
    code = main(["build", str(tmp_path / "m.npz"), "--board", "icebreaker", "-o",
                 str(tmp_path / "b"), "--lanes", "2", "--baud", str(FAST_BAUD), "--verify", "3",
                 "--input", str(tmp_path / "in.npz")])
    assert code == 1
    design = seen["design"]
    assert (design.shape.lanes, design.divisor, design.synth_opts) == (2, 4, "-dsp")
    assert seen["samples"] == 3 and seen["sim"] == "icarus"
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["netlist_check"]["first_difference"].startswith("sample 1, step 2")
    assert report["netlist_check"]["input"] == str(tmp_path / "in.npz")
    assert "netlist (icarus): 3 sample(s)" in (tmp_path / "b" / "report.txt").read_text()


# ----------------------------------------------------------------------------- Icarus


#: a cell of a ``write_verilog -noattr`` netlist: type, parameters, name, connections
CELL = re.compile(r"^  (\w+) (?:#\((?P<params>.*?)\n  \) )?(?P<name>\S+)\s+\((?P<ports>.*?)\n  \);",
                  re.S | re.M)


def _connections(ports: str) -> dict[str, str]:
    return {pin: net.strip() for pin, net in re.findall(r"\.(\w+)\(([^)]*)\)", ports)}


def _corrupt_score_lut(text: str, layer: int) -> tuple[str, str]:
    """``text`` with the function of the LUT that computes bit 0 of readout unit 0's score
    register (the LUT driving that flip-flop's D input) inverted (LUT_INIT ^ 0xffff): the
    score is then wrong whenever the register loads. Returns the text and the LUT's name."""
    cells = list(CELL.finditer(text))
    q_net = f"\\core.layer{layer}.scores[0] [0]"
    flop = next(c for c in cells if c[1].startswith("SB_DFF")
                and _connections(c["ports"]).get("Q") == q_net)
    d_net = _connections(flop["ports"])["D"]
    lut = next(c for c in cells if c[1] == "SB_LUT4" and _connections(c["ports"]).get("O") == d_net)
    init = re.search(r"\.LUT_INIT\(16'h([0-9a-f]{4})\)", lut["params"])
    start, end = lut.start("params") + init.start(1), lut.start("params") + init.end(1)
    return text[:start] + f"{int(init[1], 16) ^ 0xFFFF:04x}" + text[end:], lut["name"]


@pytest.mark.cocotb
@needs_icarus
def test_small_network_on_the_icebreaker_netlist_equals_golden(tmp_path, capsys, monkeypatch):
    model, spikes = small_case()
    save_model(model, tmp_path / "m.npz")
    labels = np.arange(2) % model.layers[-1].size
    Inputs(spikes, labels).save(tmp_path / "in.npz")
    code = main(["cosim", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"), "--netlist",
                 "icebreaker", "--baud", str(FAST_BAUD), "--out", str(tmp_path / "r.npz")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "agreement: netlist == golden, bit for bit" in out
    assert "agreement: netlist == RTL, bit for bit" in out
    assert "SB_LUT4" in out
    assert int(re.search(r"netlist: ([\d,]+) cycles", out)[1].replace(",", "")) > 0
    result, expected = load_result(tmp_path / "r.npz"), golden.run(model, spikes)
    assert sum(int(s.sum()) for s in expected.spikes) > 0        # spikes were compared
    assert first_difference(expected, result) is None
    # a second run finds the netlist by content: Yosys does not run again
    design = netlist.Design.of(model, get_board("icebreaker"), baud=FAST_BAUD)

    def no_tool(*args, **kwargs):
        raise AssertionError("Yosys ran again")
    monkeypatch.setattr(netlist.children, "run", no_tool)
    assert netlist.synthesise(design).cached


@pytest.mark.cocotb
@needs_icarus
def test_a_netlist_with_one_lut_inverted_is_caught(tmp_path, capsys, monkeypatch):
    """The score LUT's inversion shows as a mismatch of exactly that score, reported like an
    RTL mismatch (first difference), with a waveform of the sample kept."""
    model, spikes = small_case()
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes).save(tmp_path / "in.npz")
    readout = len(model.layers) - 1
    real_build = netlist.build
    names = []

    def corrupted_build(synthesised, sim="icarus", netlist_text=None, waves=False):
        text, name = _corrupt_score_lut(synthesised.path.read_text(), readout)
        names.append(name)
        return real_build(synthesised, sim, text, waves)
    monkeypatch.setattr(netlist, "build", corrupted_build)
    code = main(["cosim", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"), "--netlist",
                 "icebreaker", "--baud", str(FAST_BAUD), "--out", str(tmp_path / "r.npz")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert names, "the corrupted build was not used"
    assert f"MISMATCH: first difference at sample 0, scores of layer {readout}, unit 0: golden " \
        in out and ", netlist " in out
    assert "MISMATCH: netlist vs RTL" in out
    expected = golden.run(model, spikes)
    difference = first_difference(expected, load_result(tmp_path / "r.npz"))
    assert (difference.sample, difference.step, difference.layer, difference.unit) == \
        (0, None, readout, 0)
    assert (tmp_path / "r.sample0.netlist.fst").stat().st_size > 0


# ----------------------------------------------------------------------------- slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's model and test input (`delayhw demo` trains the same task, seed 0)."""
    from delayhw.train.api import train_task
    out = tmp_path_factory.mktemp("demo")
    report = train_task("synthetic", out / "demo.npz", quiet=True, seed=0)
    return report.model_path, report.test_input_path


@pytest.mark.slow
@pytest.mark.cocotb
@needs_icarus
@pytest.mark.parametrize("board, samples, marks", [
    # iCE40: the board's own 3 Mbaud, 10 cycles per bit at 30 MHz
    ("icebreaker", 3, ["UART divisor 10"]),
    # ECP5: block RAM and multipliers through delayhw's DP16KD and MULT18X18D models
    ("ulx3s-85f", 2, ["DP16KD", "MULT18X18D"])])
def test_demo_on_the_board_netlist_at_its_real_baud(demo, tmp_path, capsys, board, samples,
                                                    marks):
    """The issue's target: `delayhw cosim demo.npz demo.test.npz --netlist BOARD` at the
    board's default baud, a few samples, golden- and RTL-equal."""
    model_path, input_path = demo
    code = main(["cosim", str(model_path), str(input_path), "--netlist", board,
                 "--samples", str(samples), "--out", str(tmp_path / "r.npz")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"netlist == golden, bit for bit ({samples} samples" in out and "netlist == RTL" in out
    assert all(mark in out for mark in marks), marks


@pytest.mark.slow
@pytest.mark.cocotb
@needs_icarus
def test_small_network_on_the_ulx3s_netlist_equals_golden(tmp_path):
    model, spikes = small_case()
    design = netlist.Design.of(model, get_board("ulx3s-85f"), baud=11_250_000)   # 45 MHz / 4
    synthesised = netlist.synthesise(design)
    assert {"DP16KD", "MULT18X18D"} <= set(synthesised.cells())
    run = netlist.run(synthesised, spikes, sim="icarus")
    assert first_difference(golden.run(model, spikes), run.result) is None


@pytest.mark.slow
@pytest.mark.cocotb
def test_small_network_on_the_icebreaker_netlist_in_verilator(tmp_path):
    model, spikes = small_case()
    design = netlist.Design.of(model, get_board("icebreaker"), baud=FAST_BAUD)
    synthesised = netlist.synthesise(design)
    run = netlist.run(synthesised, spikes, sim="verilator")
    assert first_difference(golden.run(model, spikes), run.result) is None
    assert run.cycles > 0


@pytest.mark.slow
@pytest.mark.cocotb
@needs_icarus
def test_build_verify_runs_the_built_design_on_its_netlist(tmp_path, capsys):
    import json
    model, spikes = small_case()
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes).save(tmp_path / "in.npz")
    code = main(["build", str(tmp_path / "m.npz"), "--board", "icebreaker", "-o",
                 str(tmp_path / "b"), "--baud", str(FAST_BAUD), "--verify", "1", "--input",
                 str(tmp_path / "in.npz")])
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert code == (0 if report["timing_met"] else 1)
    check = report["netlist_check"]
    assert check["equal"] and check["samples"] == 1 and not check["configuration_loaded"]
    assert "netlist (icarus): 1 sample(s)" in (tmp_path / "b" / "report.txt").read_text()


@pytest.mark.slow
@pytest.mark.cocotb
@needs_icarus
def test_regress_on_netlists(capsys):
    code = main(["regress", "--netlist", "icebreaker", "--baud", str(FAST_BAUD), "--seeds",
                 "2", "--batch", "1", "--steps", "4", "--max-size", "4", "-j", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "netlist (icebreaker) vs golden" in out and "2/2 networks bit-exact" in out
