"""Generated Verilog: lints in Verilator, compiles in Icarus; `delayhw generate` CLI."""

import json

import numpy as np
import pytest

from delayhw import netgen, save_model
from delayhw.cli import main
from delayhw.gateware.core import Core
from delayhw.gateware.schemes.fifo_cost import fifo_step_cycles
from delayhw.gateware.shape import CoreShape
from delayhw.gateware.verilog import TOP, convert, generate
from delayhw.sim.tools import compile_icarus, icarus_available, lint_verilator

from helpers import rtlil_ports

CASES = [  # (seed, lanes, params): d_max 0, recurrent, bias, several layers
    (1, 1, netgen.NetParams(d_max=(0, 0), p_recurrent=0.0)),
    (2, 2, netgen.NetParams(p_recurrent=1.0, p_bias=1.0, max_layers=3)),
    (3, 4, netgen.NetParams(max_inputs=9, max_size=9, d_max=(7, 12))),
]


@pytest.mark.parametrize("seed, lanes, params", CASES, ids=["d0", "rec-bias", "lanes4"])
def test_generated_verilog_lints_and_compiles(tmp_path, seed, lanes, params):
    model = netgen.random_model(np.random.default_rng(seed), params)
    info = generate(model, tmp_path, lanes=lanes)
    verilog = tmp_path / f"{TOP}.v"
    lint = lint_verilator(verilog)
    assert lint.returncode == 0, lint.stderr
    if not icarus_available():
        pytest.skip("iverilog is not installed (CI installs it); Verilator lint passed")
    comp = compile_icarus(verilog, tmp_path / "core.vvp")
    assert comp.returncode == 0, comp.stderr
    assert info["parameters"]["lanes"] == lanes


def test_manifest_describes_the_ports_of_the_verilog(tmp_path):
    model = netgen.example_model()
    info = generate(model, tmp_path, lanes=2)
    text = (tmp_path / f"{TOP}.v").read_text()
    header = text[text.index(f"module {TOP}"):text.index(");")]
    for port in info["ports"]:
        assert port["name"] in header, port
        width = f"[{port['width'] - 1}:0] " if port["width"] > 1 else ""
        assert f"{port['direction']} {width}{port['name']};" in text, port
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(info))
    layers = on_disk["parameters"]["layers"]
    assert [l["size"] for l in layers] == [l.size for l in model.layers]
    # the layers overlap: the fifo step formula (measured in tests/test_gateware_overlap.py),
    # shorter than the layers one after another (12 cycles of pipeline each, 1 per step)
    shape = CoreShape.from_model(model, 2, "fifo")
    cycles = on_disk["cycles_per_step"]["value"]
    assert cycles == fifo_step_cycles(shape.layers, 2)
    assert cycles < sum(-(-l.size // 2) * l.fan_in + 12 for l in model.layers) + 1


def test_generate_writes_the_same_design_as_rtlil(tmp_path):
    """The RTLIL next to the Verilog is the design the Verilog was made from: the manifest
    names both, the RTLIL's top has the manifest's ports, and the Verilog is exactly what
    converting the core on its own gives."""
    model = netgen.example_model()
    info = generate(model, tmp_path, lanes=2, scheme="ring")
    assert (info["verilog"], info["rtlil"]) == (f"{TOP}.v", f"{TOP}.il")
    text = (tmp_path / info["rtlil"]).read_text()
    key = lambda p: p["name"]  # noqa: E731
    assert sorted(rtlil_ports(text, TOP), key=key) == sorted(info["ports"], key=key)
    core = Core(CoreShape.from_model(model, 2, "ring"), model)
    assert (tmp_path / info["verilog"]).read_text() == convert(core)


def test_cli_generate(tmp_path, capsys):
    model_path = save_model(netgen.example_model(), tmp_path / "m.npz")
    out = tmp_path / "hw"
    assert main(["generate", str(model_path), "-o", str(out)]) == 0
    assert (out / f"{TOP}.v").exists() and (out / "manifest.json").exists()
    assert (out / f"{TOP}.il").exists()
    assert "cycles per step" in capsys.readouterr().out
    # a non-empty output directory is not overwritten without --force
    assert main(["generate", str(model_path), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["generate", str(model_path), "-o", str(out), "--force", "--lanes", "2"]) == 0
    capsys.readouterr()
    assert main(["generate", str(model_path), "-o", str(tmp_path / "r"), "--scheme", "ring",
                 "--lanes", "4"]) == 0
    assert "scheme ring, 4 lane(s)" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["parameters"]["scheme"] == "ring"
    assert manifest["memory_bits"]["ring"] > 0 and "delay_lines" not in manifest["memory_bits"]
    # an unknown scheme: exit 2, one line naming the option and the choices, nothing written
    assert main(["generate", str(model_path), "-o", str(tmp_path / "x"), "--scheme", "lines"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--scheme: invalid choice: 'lines'" in err and "'ring'" in err
    assert not (tmp_path / "x").exists()
