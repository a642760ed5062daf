"""The wire format is defined once (gateware/wire.py): the Amaranth layouts of the core's
streams, the Python packers and the simulation top's widths must all agree with the table."""

import re
import subprocess
from importlib import resources

import numpy as np
import pytest

from delayhw import netgen
from delayhw.gateware import protocol, wire
from delayhw.gateware.core import Core
from delayhw.gateware.shape import CoreShape
from delayhw.gateware.verilog import TOP, convert
from delayhw.sim import clock, runner
from delayhw.sim.tools import icarus_available

SCORE_BITS = 24
WORDS = {"inputs": wire.INPUT, "config": wire.CONFIG, "status": wire.STATUS,
         "outputs": wire.output(SCORE_BITS)}


def random_fields(word: wire.Word, rng) -> dict:
    """A random in-range value for every field of ``word`` (nested words as dicts)."""
    out = {}
    for name, f in word.fields:
        if isinstance(f, wire.Word):
            out[name] = random_fields(f, rng)
        else:
            lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed \
                else (0, (1 << f.width) - 1)
            out[name] = int(rng.choice([lo, hi, int(rng.integers(lo, hi, endpoint=True))]))
    return out


@pytest.mark.parametrize("name", WORDS)
def test_python_packers_equal_amaranths_packing_of_the_core_layouts(name):
    """Amaranth packs a value of the core's own port layout into the same bits as
    ``Word.pack``, and ``Word.unpack`` inverts both."""
    word = WORDS[name]
    shape = CoreShape.from_model(netgen.example_model(), max_steps=1000)
    assert shape.score_bits == SCORE_BITS
    core = Core(shape)
    core._MustUse__silence = True          # only its signature is looked at
    member = core.signature.members[name]
    layout = member.signature.members["payload"].shape if name != "status" else member.shape
    assert layout == word.layout()
    rng = np.random.default_rng(len(name))
    for _ in range(50):
        values = random_fields(word, rng)
        packed = word.pack(**values)
        assert packed == layout.const(values).as_value().value
        assert word.unpack(packed) == values
    assert [f["width"] for f in word.flat()] and sum(f["width"] for f in word.flat()) == word.width


def test_protocol_words_are_the_wire_words():
    addr = wire.config_address(2, wire.Field.D_REC, 5, 9)
    assert protocol.config_word(addr, -3) == wire.CONFIG.pack(
        addr={"layer": 2, "field": wire.Field.D_REC, "row": 5, "col": 9}, data=-3)
    assert protocol.input_word(wire.InKind.SPIKE, 700) == wire.INPUT.pack(kind=0, index=700)
    word = wire.output(SCORE_BITS).pack(kind=wire.OutKind.SCORE, layer=1, unit=4, value=-7)
    assert protocol.unpack_output(word, SCORE_BITS) == (wire.OutKind.SCORE, 1, 4, -7)


@pytest.mark.parametrize("fields", [{"index": 1 << wire.INDEX_BITS}, {"kind": -1}, {"bogus": 1}])
def test_a_value_that_does_not_fit_its_field_is_refused(fields):
    with pytest.raises(ValueError, match="input"):
        wire.INPUT.pack(**fields)


def top_source() -> str:
    return resources.files("delayhw.sim").joinpath("cosim_top.v").read_text()


def test_simulation_top_takes_every_wire_width_as_a_parameter():
    """cosim_top.v declares exactly the parameters the runner passes, and sizes the core's
    payloads and status by them, never by a written-out number."""
    text = top_source()
    declared = re.findall(r"parameter\s+(\w+)\s*=", text)
    shape = CoreShape.from_model(netgen.example_model(), 1, "fifo")
    assert declared == list(runner.top_parameters(shape))
    assert list(wire.sim_parameters(shape.score_bits)) + ["CLOCK_PERIOD_NS"] == declared
    core_ports = re.search(r"delayhw_core core \((.*?)\);", text, re.S).group(1)
    for port in ("inputs__payload", "config__payload", "outputs__payload", "status"):
        assert re.search(rf"\.{port}\((\w+)", core_ports), port
    for signal in ("payload", "p_tmp", "out_payload", "status"):
        decl = re.search(rf"(?:reg|wire)\s*(\[[^\]]*\])\s*{signal}\b", text)
        assert decl and not re.fullmatch(r"\[\d+:0\]", decl.group(1)), (signal, decl)
    assert not re.search(r"\[\d+:0\]\s*==|\'d\d", text.split("always @(posedge clk)")[1]
                         .split("lfsr <=")[0])      # kind codes come from parameters too


@pytest.mark.parametrize("top", ["cosim_top.v", "board_sim.v"])
def test_simulation_tops_take_the_clock_period_from_python(top):
    """Both Verilog tops toggle their clock every CLOCK_PERIOD_NS / 2, a parameter that
    sim/clock.py sets (no delay written as a number), and refuse to run without it."""
    text = resources.files("delayhw.sim").joinpath(top).read_text()
    assert re.search(r"parameter\s+CLOCK_PERIOD_NS\s*=\s*0\b", text)
    assert re.search(r"always\s+#\(CLOCK_PERIOD_NS\s*/\s*2\)\s+clk\s*=\s*~clk;", text)
    assert "$fatal" in text.split("CLOCK_PERIOD_NS < 2")[1].split(";")[0]
    assert not re.search(r"#\s*\d", text)
    assert clock.verilog_parameters() == {"CLOCK_PERIOD_NS": clock.CLOCK_PERIOD_NS}
    assert clock.CLOCK_PERIOD_NS % 2 == 0


def test_the_core_verilog_ports_have_the_wire_widths():
    shape = CoreShape.from_model(netgen.example_model(), 2, "ring")
    text = convert(Core(shape))
    params = wire.sim_parameters(shape.score_bits)
    for port, key in (("inputs__payload", "IN_W"), ("config__payload", "CFG_W"),
                      ("outputs__payload", "OUT_W"), ("status", "STATUS_W")):
        width = re.search(rf"(?:input|output) \[(\d+):0\] {port};", text)
        assert width and int(width.group(1)) + 1 == params[key], port


@pytest.mark.skipif(not icarus_available(), reason="iverilog is not installed (CI installs it)")
def test_simulation_top_connects_the_core_without_width_mismatches(tmp_path):
    """Icarus elaborates cosim_top with the runner's parameters around a real core and finds
    no port whose width differs (its -Wall port warnings)."""
    shape = CoreShape.from_model(netgen.example_model(), 1, "fifo")
    (tmp_path / f"{TOP}.v").write_text(convert(Core(shape)))
    (tmp_path / "cosim_top.v").write_text(top_source())
    params = [f"-Pcosim_top.{k}={v}" for k, v in runner.top_parameters(shape).items()]
    run = subprocess.run(["iverilog", "-g2005", "-Wall", *params, "-s", "cosim_top", "-o",
                          str(tmp_path / "top.vvp"), str(tmp_path / "cosim_top.v"),
                          str(tmp_path / f"{TOP}.v")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert not [line for line in run.stderr.splitlines() if "Port" in line and "bit" in line], \
        run.stderr


def test_every_registered_scheme_is_a_layer_engine_and_the_shape_offers_exactly_those():
    from delayhw.gateware.layer import LayerEngine
    from delayhw.gateware.schemes import REGISTRY, SCHEME_ENGINES, engine
    from delayhw.gateware.shape import SCHEMES
    assert SCHEMES == tuple(REGISTRY) == tuple(SCHEME_ENGINES)
    for name in SCHEMES:
        assert issubclass(engine(name), LayerEngine) and SCHEME_ENGINES[name] is engine(name)


def test_reset_mode_codes():
    from delayhw.spec import RESETS, Reset
    assert RESETS == ("subtract", "zero") and [r.zero_bit for r in Reset] == [0, 1]
    assert Reset("zero") is Reset.ZERO and Reset.SUBTRACT == "subtract"
