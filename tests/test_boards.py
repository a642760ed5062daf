"""Board targets, the fit check, `delayhw build`'s refusals, and `delayhw run` against the
simulated board (core + UART host link in Verilator / Icarus) compared with the golden model."""

import json
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from delayhw import Inputs, golden, load_model, load_result, netgen, save_model
from delayhw.boards import build as build_mod
from delayhw.boards.clock import ecp5_pll, ice40_pll
from delayhw.boards.fit import fit_check, memory_blocks
from delayhw.boards.targets import all_boards, get_board
from delayhw.boards.target import ECP5_85F, ICE40UP5K
from delayhw.cli import main
from delayhw.errors import DelayhwError
from delayhw.gateware import hostlink_protocol as hp
from delayhw.gateware.shape import CoreShape, config_words
from delayhw.sim.tools import icarus_available
from delayhw.spec import LayerShape

SIMS = [
    "verilator",
    pytest.param("icarus", marks=pytest.mark.skipif(
        not icarus_available(), reason="iverilog is not installed (.ci/run installs it)")),
]
PARAMS = netgen.NetParams(max_inputs=4, max_size=4, max_layers=2, d_max=(0, 4))


def shd_size_model():
    """700 -> 128 recurrent lif (d_max 25) -> 20 readout, 8-bit weights."""
    shapes = [LayerShape("lif", 128, 700, 8, 16, 8, 25, True, False),
              LayerShape("readout", 20, 128, 8, 16, 8, 25, False, False)]
    return netgen.random_contents(np.random.default_rng(0), 700, shapes)


# ----------------------------------------------------------------------------- fit check


@pytest.mark.parametrize("depth, width, blocks", [
    (256, 16, 1), (257, 16, 2), (512, 8, 1), (1000, 1, 1), (2048, 2, 1), (2049, 2, 2),
    (4, 16, 0), (4, 64, 0), (8, 8, 0),      # <= 4 rows or <= 64 bits: flip-flops
    (105984, 8, 207),      # min over configs: 8 bits in 512-deep blocks
])
def test_ice40_memory_blocks(depth, width, blocks):
    assert memory_blocks(depth, width, ICE40UP5K) == blocks


def test_ecp5_memory_blocks_use_the_widest_fitting_configuration():
    assert memory_blocks(512, 36, ECP5_85F) == 1
    assert memory_blocks(1024, 36, ECP5_85F) == 2
    assert memory_blocks(16384, 1, ECP5_85F) == 1
    assert memory_blocks(2560, 25, ECP5_85F) == min(
        -(-25 // w) * -(-2560 // d) for w, d in ECP5_85F.bram_configs)


def test_ecp5_boards_put_the_input_bitmaps_in_lut_ram_and_ice40_refuses_it():
    shape = CoreShape(n_inputs=4, layers=(LayerShape("readout", 3, 4, 8, 16, 8, 5, False,
                                                     False),))
    for board in all_boards().values():
        want = "lut" if board.fabric.family == "ecp5" else "auto"
        assert board.core_shape(shape).input_ram == want, board.name
    icebreaker = get_board("icebreaker")
    with pytest.raises(DelayhwError, match=r"input_ram: 'lut' is for ecp5 builds only, not ice40"):
        replace(icebreaker, input_ram="lut").core_shape(shape)
    with pytest.raises(DelayhwError, match=r"input_ram: 'lut' is for ecp5 .* not ice40"):
        replace(shape, memory="spram", input_ram="lut")           # SPRAM: an iCE40 build
    with pytest.raises(DelayhwError, match=r"input_ram: 'block' is not available"):
        replace(shape, input_ram="block")


@pytest.mark.parametrize("scheme", ["fifo", "ring"])
def test_fit_check_counts_lut_ram_input_memories_as_logic_not_block_ram(scheme):
    # the ECP5 boards build the input bitmaps (700 x 1 each) in LUT RAM: no EBR, 10 LUT4 per
    # 16 x 4 cell (the ring's input event list stays in block RAM)
    shape = CoreShape.from_model(shd_size_model(), 16, scheme)
    board = get_board("ulx3s-85f")
    lut, auto = fit_check(shape, board), fit_check(shape, replace(board, input_ram="auto"))
    inputs = {"core.in_mem0": 44, "core.in_mem1": 44}
    assert {m.kind: (m.blocks, m.lut_ram) for m in lut.memories if m.kind in inputs} == {
        k: (0, cells) for k, cells in inputs.items()}
    in_blocks = sum(m.blocks for m in auto.memories if m.kind in inputs)
    assert in_blocks >= len(inputs)                 # block RAM when not asked otherwise
    core_blocks = [sum(m.blocks for m in r.memories if m.kind.startswith("core."))
                   for r in (lut, auto)]
    assert core_blocks[0] == core_blocks[1] - in_blocks
    assert lut.rows[0].needed == sum(m.blocks for m in lut.memories)
    assert lut.rows[2].needed == auto.rows[2].needed + 10 * sum(inputs.values())


def test_fit_check_counts_every_memory_of_the_board_top():
    model, _ = netgen.random_case(4, PARAMS)
    shape = CoreShape.from_model(model)
    report = fit_check(shape, get_board("icebreaker"))
    bits = {m.kind: m.depth * m.width for m in report.memories}
    core = sum(v for k, v in bits.items() if k.startswith("core.") and k != "core.queue.storage")
    assert core == shape.memory_bits()["total"]          # every memory of the core
    assert {"core.queue.storage", "rx_fifo.storage", "link.receiver.buffer"} <= set(bits)
    assert report.rows[0].needed == sum(m.blocks for m in report.memories)


@pytest.mark.parametrize("scheme, lanes", [("fifo", 1), ("fifo", 8), ("ring", 1), ("ring", 4)])
def test_logic_estimate_is_the_documented_rule(scheme, lanes):
    """docs/boards.md: ECP5 LUT4 = 138 + W (28.9 + 7.5 (lanes - 1)) [+ W (7.2 + 3.9 (lanes - 1))
    for ring], W the sum of v + acc + w + d bits over layers; iCE40 LC = 1.28 x that."""
    model = shd_size_model()
    shape = CoreShape.from_model(model, lanes, scheme)
    w = sum(l.v_bits + l.acc_bits + l.w_bits + l.d_bits for l in shape.layers)
    lut = 138 + w * (28.9 + 7.5 * (lanes - 1))
    if scheme == "ring":
        lut += w * (7.2 + 3.9 * (lanes - 1))
    ecp5 = fit_check(shape, get_board("ulx3s-85f"))
    ice40 = fit_check(shape, get_board("icebreaker"))
    # plus 10 LUT4 per LUT RAM cell (16 x 4 bits) of the ECP5 input memories: two 700 x 1
    # bitmaps
    assert ecp5.rows[2].needed == round(lut) + 10 * 2 * 44
    # plus 256 LC per multiplier the 8 DSPs cannot take (one v_bits x (f_bits + 1) = 16 x 9
    # multiplier per layer and lane: one DSP each)
    spill = max(0, 2 * lanes - 8)
    assert ice40.rows[1].needed == 2 * lanes
    assert ice40.rows[2].needed == round(1.28 * lut + 256 * spill)
    # the iCEBreaker's table has the SPRAM row: the hidden layer's synapses (105,984 / lanes
    # rows x 16 bits per lane) need more than the 4 blocks, so only the readout's (2,560 /
    # lanes rows, under one block deep) go there, one 16-bit-wide block per lane, while the
    # lanes' blocks fit the 4
    assert [(r.needed, r.available) for r in ice40.rows if r.resource.startswith("SPRAM")] == [
        (lanes if lanes <= 4 else 0, 4)]
    assert not any(r.resource.startswith("SPRAM") for r in ecp5.rows)


def test_shd_size_model_is_refused_with_a_table_before_any_tool_runs(tmp_path, monkeypatch,
                                                                     capsys):
    model = shd_size_model()
    save_model(model, tmp_path / "shd.npz")

    def no_tools(*a, **k):
        raise AssertionError("a tool ran")
    monkeypatch.setattr(build_mod, "run_tools", no_tools)
    code = main(["build", str(tmp_path / "shd.npz"), "--board", "icebreaker",
                 "-o", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2
    assert "does not fit the icebreaker" in err
    assert "block RAM" in out and "NO" in out
    assert not (tmp_path / "out").exists()        # nothing written


def test_build_refuses_unknown_board_and_nonempty_dir(tmp_path, capsys):
    model, _ = netgen.random_case(4, PARAMS)
    save_model(model, tmp_path / "m.npz")
    assert main(["build", str(tmp_path / "m.npz"), "--board", "nosuch", "-o",
                 str(tmp_path / "o")]) == 2
    assert "icebreaker" in capsys.readouterr().err
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("mine")
    assert main(["build", str(tmp_path / "m.npz"), "--board", "icebreaker", "-o",
                 str(tmp_path / "o")]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "o" / "keep.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- targets


@pytest.mark.parametrize("name", sorted(all_boards()))
def test_every_board_top_is_placed_on_its_pins(name, tmp_path):
    """The platform accepts the top (UART and LED resources exist, pins are constrained);
    no tool runs."""
    board = get_board(name)
    model, _ = netgen.random_case(4, PARAMS)
    shape = CoreShape.from_model(model)
    clock = board.clocking()
    plan = board.platform().prepare(board.top(shape, model, clock), name="top")
    files = {fname: text if isinstance(text, str) else text.decode()
             for fname, text in plan.files.items()}
    constraints = "".join(text for fname, text in files.items() if fname.endswith((".pcf", ".lpf")))
    assert "uart" in constraints and "rx" in constraints and "tx" in constraints
    assert clock.baud_error(board.baud) <= 0.01 and clock.divisor(board.baud) >= 4
    # the core's clock is the PLL's output; nextpnr derives its constraint from the oscillator's
    assert clock.pll is not None and clock.hz != board.oscillator_hz
    rtlil = files["top.il"]
    if board.fabric.family == "ice40":
        assert "cell \\SB_PLL40_PAD" in rtlil and f"parameter \\DIVF {clock.pll.divf}\n" in rtlil
        assert f"set_frequency clk12_0__io {board.oscillator_hz / 1e6}" in constraints
    else:
        assert "cell \\EHXPLLL" in rtlil and f"parameter \\CLKFB_DIV {clock.pll.clkfb_div}\n" in rtlil
        assert f'{board.oscillator_hz} HZ' in constraints


# ----------------------------------------------------------------------------- clocks

def _tool_lines(tool, args):
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    path = Path(sys.executable).parent / tool
    exe = str(path) if path.exists() else shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed (the boards extra installs it)")
    return subprocess.run([exe, *args], capture_output=True, text=True, check=True).stdout


def _field(text, label):
    import re
    return int(re.search(rf"^{re.escape(label)}:?\s+(\d+)", text, re.M)[1])


@pytest.mark.parametrize("f_in, f_out", [(12, 18), (12, 24), (12, 30), (12, 48), (12, 100),
                                         (12, 16.125)])
def test_ice40_pll_dividers_match_icepll_and_the_data_sheet(f_in, f_out):
    pll = ice40_pll(f_in, f_out)
    assert 10 <= pll.f_pfd_mhz <= 133 and 533 <= pll.f_vco_mhz <= 1066
    assert 16 <= pll.f_out_mhz <= 275
    assert pll.f_out_mhz == Fraction(f_in) * (pll.divf + 1) / ((pll.divr + 1) * 2 ** pll.divq)
    text = _tool_lines("yowasp-icepll", ["-i", str(f_in), "-o", str(f_out)])
    assert (pll.divr, pll.divf, pll.divq, pll.filter_range) == (
        _field(text, "DIVR"), _field(text, "DIVF"), _field(text, "DIVQ"),
        _field(text, "FILTER_RANGE"))


def test_ice40_pll_never_offers_an_output_below_16_mhz():
    """icepll answers 16 MHz from 12 with 15.94 MHz, under the PLL's 16 MHz minimum; the
    search here takes the nearest output inside the range, 12 * 86 / 64."""
    assert ice40_pll(12, 16).f_out_mhz == Fraction(12 * 86, 64)


@pytest.mark.parametrize("f_in, f_out", [(25, 40), (25, 50), (25, 48), (25, 64), (25, 45),
                                         (48, 64), (48, 75), (25, 125), (12, 90)])
def test_ecp5_pll_dividers_match_ecppll_and_the_data_sheet(f_in, f_out):
    pll = ecp5_pll(f_in, f_out)
    assert 3.125 <= pll.f_pfd_mhz <= 400 and 400 <= pll.f_vco_mhz <= 800
    assert pll.f_out_mhz == Fraction(f_in) * pll.clkfb_div / pll.clki_div
    text = _tool_lines("yowasp-ecppll", ["-i", str(f_in), "-o", str(f_out)])
    assert (pll.clki_div, pll.clkfb_div, pll.clkop_div) == (
        _field(text, "Refclk divisor"), _field(text, "Feedback divisor"),
        _field(text, "clkout0 divisor"))


def test_clock_requests_out_of_reach_are_refused():
    board = get_board("icebreaker")
    assert board.clocking(12e6).pll is None                      # the oscillator: no PLL
    with pytest.raises(DelayhwError, match="16 to 275 MHz"):
        board.clocking(14e6)
    with pytest.raises(DelayhwError, match="3.125 to 400 MHz"):
        get_board("ulx3s-85f").clocking(500e6)


@pytest.mark.parametrize("clock_mhz, divisor", [(None, 30), (16, 16), (24, 24), (12, 12),
                                                (48, 48)])
def test_uart_divisor_follows_the_pll_clock(clock_mhz, divisor):
    """The board top's UART divides the clock the PLL makes, not the oscillator's (at the
    default baud rate for that clock, and at 1 Mbaud)."""
    board = get_board("icebreaker")
    clock = board.clocking(clock_mhz and clock_mhz * 1e6)
    shape = CoreShape.from_model(netgen.random_case(4, PARAMS)[0])
    top = board.top(shape, None, clock, 1_000_000)
    top._MustUse__silence = True            # only its divisor is read, never elaborated
    assert top.divisor == clock.divisor(1_000_000) == round(clock.hz / 1e6) == divisor
    top = board.top(shape, None, clock)
    top._MustUse__silence = True
    assert top.divisor == clock.divisor(board.default_baud(clock))


@pytest.mark.parametrize("clock_hz, baud", [(16e6, 1_000_000), (16e6, None), (None, None)])
def test_uart_receives_a_host_at_the_pll_clock(clock_hz, baud):
    """A host sending at exactly 1 Mbaud or the default rate to the iCEBreaker's UART at
    16.125 MHz (16 / 8 cycles per bit, so the host's bits are 16.125 / 8.06 cycles long), or
    at the default 30 MHz (3 Mbaud, 10 cycles): every byte arrives."""
    from amaranth import Module
    from amaranth.sim import Simulator

    from delayhw.gateware.uart import UARTRX
    board = get_board("icebreaker")
    clock = board.clocking(clock_hz)
    baud = baud or board.default_baud(clock)
    cycles_per_bit = clock.hz / baud
    m = Module()
    m.submodules.rx = rx = UARTRX(clock.divisor(baud))
    data = bytes([hp.END, 0x00, 0xFF, 0x55, 0xAA, 0x80, 0x01, 0xDB] * 2)
    bits = [bit for b in data for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]]
    got = []

    async def line(ctx):
        await ctx.tick().repeat(5)
        for n, bit in enumerate(bits):       # edges at the host's times, rounded to cycles
            ctx.set(rx.rx, bit)
            await ctx.tick().repeat(round((n + 1) * cycles_per_bit) - round(n * cycles_per_bit))

    async def receive(ctx):
        ctx.set(rx.o.ready, 1)
        for _ in range(int(len(bits) * cycles_per_bit) + 40):
            _, _, valid, payload = await ctx.tick().sample(rx.o.valid, rx.o.payload)
            if valid:
                got.append(payload)
    sim = Simulator(m)
    sim.add_clock(1 / clock.hz)
    sim.add_testbench(line, background=True)
    sim.add_testbench(receive)
    sim.run()
    assert bytes(got) == data


def test_build_checks_timing_and_baud_at_the_pll_clock(tmp_path, monkeypatch):
    """Timing is met when nextpnr's Fmax reaches the PLL's clock (not the oscillator's), and
    the baud rate is checked at the PLL's clock: 3 Mbaud is exact at 12 MHz, 7% off at
    16.125."""
    model, _ = netgen.random_case(4, PARAMS)
    board = get_board("icebreaker")
    monkeypatch.setattr(build_mod, "run_tools", lambda directory, on_stage: None)
    monkeypatch.setattr(build_mod, "parse_report", lambda directory, board: {
        "resources": {}, "fmax_mhz": 14.0, "clocks": {}})
    report = build_mod.build(model, board, tmp_path / "a")
    assert report["clock_mhz"] == 30 and not report["timing_met"]
    assert report["uart_divisor"] == 10 and report["clock"]["pll"]["divf"] == 79
    report = build_mod.build(model, board, tmp_path / "b", clock_hz=12e6)
    assert report["clock_mhz"] == 12 and report["timing_met"] and report["clock"]["pll"] is None
    with pytest.raises(DelayhwError, match="off"):
        build_mod.build(model, board, tmp_path / "c", baud=3_000_000, clock_hz=16e6)
    build_mod.build(model, board, tmp_path / "d", baud=3_000_000, clock_hz=12e6)


def test_build_refuses_an_unreachable_clock_before_any_tool(tmp_path, capsys):
    model, _ = netgen.random_case(4, PARAMS)
    save_model(model, tmp_path / "m.npz")
    assert main(["build", str(tmp_path / "m.npz"), "--board", "icebreaker", "--clock-mhz", "10",
                 "-o", str(tmp_path / "o")]) == 2
    assert "16 to 275 MHz" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_baud_rate_far_from_the_clock_is_refused(tmp_path):
    board = get_board("icebreaker")          # 12 MHz / 2.5 Mbaud = 4.8 -> 5: 4% off
    model, _ = netgen.random_case(4, PARAMS)
    with pytest.raises(DelayhwError, match="off"):
        build_mod.build(model, board, tmp_path, baud=2_500_000, clock_hz=12e6)
    with pytest.raises(DelayhwError, match="4 clock cycles per bit"):
        build_mod.build(model, board, tmp_path, baud=6_000_000, clock_hz=12e6)   # exact, too fast


def test_link_bound_counts_bytes_per_sample():
    """The board's bytes are counted exactly (frames of 5 bytes + payload); the host's are the
    expected INPUT stream, which the encoder's real output on random inputs of that activity
    matches within 3% (700 and 8 channels at 5%: gaps running on across steps; 64 at 30%
    and 20 at 90%: bitmaps)."""
    shape = CoreShape(10, (LayerShape("lif", 20, 10, 8, 16, 8, 3, False, False),
                           LayerShape("readout", 2, 20, 8, 16, 8, 3, False, False)))
    figures = build_mod.link_bound(shape, 1_000_000, steps=10, activity=0.1)
    per_step = min(0.1 * 10 * (1 + 0.9 ** 255 / (1 - 0.9 ** 255)), 2)
    stream = 10 * per_step * (1 + 1 / 64) + 3
    assert figures.host_bytes == pytest.approx(stream + 5 * stream / 250)
    assert figures.board_bytes == pytest.approx(15 * 2 + 6 + 6 * stream / 250)
    every = build_mod.link_bound(shape, 1_000_000, steps=10, activity=0.1, scores_only=False)
    assert every.board_bytes == pytest.approx(figures.board_bytes + 8 * 10 * 0.1 * 20 + 5 * 10)
    assert figures.samples_per_s == 100_000 / max(figures.host_bytes, figures.board_bytes)
    rng = np.random.default_rng(0)
    for n, activity in [(700, 0.05), (8, 0.05), (64, 0.3), (20, 0.9)]:
        spikes = (rng.random((200, 100, n)) < activity).astype(np.uint8)
        measured = np.mean([len(hp.encode_inputs(s)) for s in spikes])
        expected = 100 * build_mod.input_bytes_per_step(n, activity) * (1 + 1 / 64) + 3
        assert measured == pytest.approx(expected, rel=0.03), (n, activity)


@pytest.mark.parametrize("name, clock_mhz, baud", [
    ("icebreaker", None, 3_000_000), ("icebreaker", 16, 2_000_000), ("icebreaker", 48, 6_000_000),
    ("ulx3s-85f", None, 3_000_000), ("ulx3s-85f", 40, 2_000_000),
    ("orangecrab-25f", None, 2_000_000), ("orangecrab-25f", 48, 3_000_000)])
def test_default_baud_is_the_bridges_fastest_that_the_clock_meets(name, clock_mhz, baud):
    """FT2232H: 12 MHz / d, FT231X and an FT232R adapter: 3 MHz / d (d = 1, 1.5, 2, 2.125,
    ...), at most 12 and 3 Mbaud; the FPGA's divisor within 1% and at least 8 cycles per bit
    (3 Mbaud is 13.3 cycles at 40 MHz, 21.3 at 64: 2.6% and 1.6% off, so 2 Mbaud there;
    4 Mbaud is 4 cycles at 16.125 MHz)."""
    board = get_board(name)
    clock = board.clocking(clock_mhz and clock_mhz * 1e6)
    assert board.default_baud(clock) == baud
    assert board.bridge.makes(baud) and clock.baud_error(baud) <= 0.01
    assert clock.divisor(baud) >= 8
    faster = [b for b in range(baud + 1, board.bridge.max_baud + 1, 1000)
              if board.bridge.makes(b) and clock.divisor(b) >= 8 and clock.baud_error(b) <= 0.01]
    assert not faster


def test_bridge_rates_are_ftdis():
    from delayhw.boards.target import FT231X, FT2232H
    assert [b for b in (3_000_000, 2_000_000, 1_500_000, 1_411_764, 1_000_000, 2_500_000)
            if FT231X.makes(b)] == [3_000_000, 2_000_000, 1_500_000, 1_000_000]
    assert FT2232H.makes(12_000_000) and FT2232H.makes(8_000_000) and FT2232H.makes(6_000_000)
    assert not FT2232H.makes(10_000_000) and not FT231X.makes(4_000_000)


# ----------------------------------------------------------------------------- run


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMS)
def test_run_on_the_simulated_board_is_bit_exact(sim, tmp_path, capsys):
    model, spikes = netgen.random_case(7, PARAMS, batch=3, steps=8)
    save_model(model, tmp_path / "m.npz")
    labels = np.arange(3) % model.layers[-1].size
    Inputs(spikes, labels).save(tmp_path / "in.npz")
    code = main(["run", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"), "--port",
                 f"sim:{sim}", "--out", str(tmp_path / "r.npz"), "--timeout", "120"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "bit for bit" in out and "samples/s" in out and "accuracy" in out
    result, expected = load_result(tmp_path / "r.npz"), golden.run(model, spikes)
    assert sum(int(s.sum()) for s in expected.spikes) > 0
    np.testing.assert_array_equal(result.scores, expected.scores)
    for a, b in zip(result.spikes, expected.spikes):
        np.testing.assert_array_equal(a, b)


@pytest.mark.cocotb
def test_scores_only_at_the_icebreakers_real_divisor_is_bit_exact():
    """The simulated board with the iCEBreaker's UART divisor at its default clock and baud
    (10 cycles per bit), dense and sparse steps (bitmaps and gap lists), several samples per
    INPUT frame, scores only: the scores equal the golden model's, and the board sent only a
    SCORE frame per readout unit, a SAMPLE frame per sample and an ACK per host frame."""
    from delayhw.boards.runtime import run_samples
    from delayhw.sim.board import SimPort
    board = get_board("icebreaker")
    clock = board.clocking()
    divisor = clock.divisor(board.baud)
    assert divisor == 10
    model, _ = netgen.random_case(7, PARAMS, batch=1, steps=8)
    rng = np.random.default_rng(1)
    n = model.n_inputs
    spikes = (rng.random((4, 12, n)) < np.where(np.arange(12) % 3 == 0, 0.9, 0.1)[:, None]
              ).astype(np.uint8)
    data = b"".join(hp.encode_inputs(s) for s in spikes)
    ops = {b >> 6 for b in data}
    assert {hp.OP_LIST, hp.OP_BITMAP} <= ops and len(data) < hp.DEFAULT_MAX_PAYLOAD
    shape = CoreShape.from_model(model)
    with SimPort(shape, "verilator", divisor=divisor) as port:
        run = run_samples(port, model, shape, spikes, timeout=120, scores_only=True)
    expected = golden.run(model, spikes)
    np.testing.assert_array_equal(run.result.scores, expected.scores)
    np.testing.assert_array_equal(run.result.predictions, expected.predictions)
    assert run.result.spikes == [] and sum(int(s.sum()) for s in expected.spikes) > 0
    config = len(list(hp.config_frames(config_words(model))))
    host_frames = config + 1 + 1 + 2           # config, MODE, one INPUT frame, 2 STATUS
    acks = (host_frames - 2) * 6
    status = 2 * (5 + hp.STATUS_PAYLOAD)
    events = len(spikes) * (model.layers[-1].size * 15 + 6)
    assert events + acks + status <= run.bytes_received <= (events + acks + status) * 1.05


@pytest.mark.cocotb
def test_simulated_board_answers_bad_frames_and_keeps_working():
    """Through the UART: a corrupted frame, an unknown type and an overflowing frame each get
    their ERROR reply; a STATUS request after them works and counts them."""
    from delayhw.boards.runtime import LinkClient
    from delayhw.sim.board import SimPort
    model, _ = netgen.random_case(7, PARAMS)
    shape = CoreShape.from_model(model)
    with SimPort(shape, "verilator") as port:
        client = LinkClient(port, timeout=60, score_bits=shape.score_bits)
        client._write(bytes([hp.END]))
        bad_crc = bytearray(hp.encode_frame(hp.Type.INPUT, b"\x01\x00"))
        bad_crc[2] ^= 0x10
        for frame, code in [(bytes(bad_crc), hp.Error.CRC),
                            (hp.encode_frame(0x55), hp.Error.TYPE),
                            (bytes([0x11]) * 400 + bytes([hp.END]), hp.Error.OVERFLOW)]:
            client._write(frame)
            reply = client._wait_reply()
            assert (reply.type, reply.payload) == (hp.Type.ERROR, bytes([code]))
        status = client.status()
    assert status.bad_frames == 3 and status.error_seen
    assert status.shape_id == hp.shape_id(shape)


class FakeBoard:
    """A port whose board answers every frame with a STATUS reply of ``shape_id`` (and link
    ``version``)."""

    name = "fake"

    def __init__(self, shape_id, version=hp.VERSION):
        self.shape_id, self.version, self.pending = shape_id, version, b""

    def write(self, data):
        if hp.FrameDecoder().feed(data):
            self.pending += hp.encode_frame(hp.Type.STATUS_REPLY, hp.Status(
                self.version, False, False, 0, 0, 0, 250, self.shape_id).pack())

    def read(self, timeout):
        data, self.pending = self.pending, b""
        return data


def test_run_refuses_a_board_of_another_shape():
    from delayhw.boards.runtime import run_samples
    model, spikes = netgen.random_case(7, PARAMS, batch=1, steps=3)
    shape = CoreShape.from_model(model)
    with pytest.raises(DelayhwError, match="another shape"):
        run_samples(FakeBoard(hp.shape_id(shape) ^ 1), model, shape, spikes, timeout=1)


@pytest.mark.parametrize("version", [1, 2, hp.VERSION + 1])
def test_run_refuses_a_bitstream_of_another_link_version(version):
    """A version-1 bitstream (EVENTS records, no INPUT stream), a version-2 one (no sample
    store: STORE/BENCH unknown) or a newer one is refused by its STATUS reply's version
    byte, before anything is sent to its core."""
    from delayhw.boards.runtime import run_samples
    model, spikes = netgen.random_case(7, PARAMS, batch=1, steps=3)
    shape = CoreShape.from_model(model)
    with pytest.raises(DelayhwError, match=f"host-link version {version}, this delayhw "
                                           f"version {hp.VERSION}: rebuild"):
        run_samples(FakeBoard(hp.shape_id(shape), version), model, shape, spikes, timeout=1)


@pytest.mark.cocotb
def test_run_bench_on_the_simulated_board(tmp_path, capsys):
    """`delayhw run --bench --port sim:verilator`: 60 samples in two loads of the simulated
    board's 4 KiB store (the event buffer holds the scores of 51 of these 5-word samples);
    scores and predictions equal the golden model's, the core-busy cycles the board counted
    equal the cost model's (CoreShape.busy_cycles) exactly, the core's output was never held,
    and samples/s is the batch over those cycles at the iCEBreaker's 30 MHz."""
    import re
    model, spikes = netgen.random_case(7, PARAMS, batch=60, steps=8)
    assert model.layers[-1].size == 4                  # 5 event words a sample
    save_model(model, tmp_path / "m.npz")
    labels = np.arange(60) % model.layers[-1].size
    Inputs(spikes, labels).save(tmp_path / "in.npz")
    code = main(["run", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"), "--port",
                 "sim:verilator", "--bench", "--board", "icebreaker", "--out",
                 str(tmp_path / "r.npz"), "--timeout", "120"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "bit for bit in scores and predictions" in out and "in 2 loads" in out, out
    result, expected = load_result(tmp_path / "r.npz"), golden.run(model, spikes)
    np.testing.assert_array_equal(result.scores, expected.scores)
    np.testing.assert_array_equal(result.predictions, expected.predictions)
    shape = CoreShape.from_model(model)
    formula = sum(shape.busy_cycles(spikes[b], [s[b] for s in expected.spikes])
                  for b in range(60))
    cycles = int(re.search(r"core-busy cycles: ([\d,]+)", out)[1].replace(",", ""))
    assert cycles == formula and "held by the link: 0 cycles" in out
    rate = float(re.search(r"samples/s at 30 MHz \(icebreaker's default clock\): ([\d,.]+)",
                           out)[1].replace(",", ""))
    assert rate == pytest.approx(60 * 30e6 / cycles, abs=0.1)


def test_bench_loads_split_the_batch_by_store_and_event_buffer():
    from delayhw.boards.runtime import bench_chunks
    streams = [bytes(n) for n in (3, 4, 2, 5, 1)]
    assert bench_chunks(streams, 7, 10) == [2, 2, 1]     # 3+4, 2+5, 1
    assert bench_chunks(streams, 100, 2) == [2, 2, 1]
    assert bench_chunks(streams, 6, 10) == [1, 2, 2]     # 3 (+4 > 6), 4+2, 5+1
    with pytest.raises(DelayhwError, match="sample 3: its input stream is 5 bytes, more than "
                                           "the board's 4-byte sample store"):
        bench_chunks(streams, 4, 10)


class StorelessBoard(FakeBoard):
    """A board of ``shape_id`` whose bitstream has no sample store: ACKs CONFIG and MODE,
    answers BENCH with an empty store and event buffer."""

    def write(self, data):
        for frame in hp.FrameDecoder().feed(data):
            if frame.type == hp.Type.BENCH:
                self.pending += hp.encode_frame(hp.Type.BENCH_REPLY, hp.Bench(0, 0, 0, 0).pack())
            elif frame.type == hp.Type.STATUS:
                super().write(data)
            else:
                self.pending += hp.encode_frame(hp.Type.ACK, bytes([frame.type]))


def test_bench_refuses_a_board_without_a_sample_store():
    from delayhw.boards.runtime import bench_samples
    model, spikes = netgen.random_case(7, PARAMS, batch=1, steps=3)
    shape = CoreShape.from_model(model)
    with pytest.raises(DelayhwError, match="fake: the board's bitstream has no sample store"):
        bench_samples(StorelessBoard(hp.shape_id(shape)), model, shape, spikes, timeout=1)


def test_bench_refuses_clock_without_bench(tmp_path, capsys):
    model, spikes = netgen.random_case(7, PARAMS, batch=1, steps=3)
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes).save(tmp_path / "in.npz")
    code = main(["run", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"), "--port",
                 "sim:verilator", "--clock-mhz", "30", "--out", str(tmp_path / "r.npz")])
    assert code == 2
    assert "--clock-mhz: only with --bench" in capsys.readouterr().err


@pytest.mark.slow
def test_icebreaker_bitstream_and_report(tmp_path):
    model, _ = netgen.random_case(4, PARAMS)
    save_model(model, tmp_path / "m.npz")
    code = main(["build", str(tmp_path / "m.npz"), "--board", "icebreaker", "-o",
                 str(tmp_path / "b")])
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert (tmp_path / "b" / report["bitstream"]).stat().st_size > 0
    assert report["resources"]["lc"]["used"] > 0 and report["fmax_mhz"] > 0
    assert code == (0 if report["timing_met"] else 1)
    # nextpnr timed the core's clock net at the PLL's output, not at the 12 MHz oscillator
    assert report["clock_mhz"] == 30 and report["clock"]["pll"]["divf"] == 79
    constraints = [c["constraint"] for c in report["nextpnr_clocks"].values()]
    assert constraints and all(abs(c - 30) < 0.1 for c in constraints)
    # samples/s: 100 steps of the cycles per step, then the clear after the sample
    shape = get_board("icebreaker").core_shape(CoreShape.from_model(model, 1, "fifo"))
    assert report["samples_per_s"] == pytest.approx(
        30e6 / (report["cycles_per_step"] * 100 + shape.clear_cycles(after_sample=True)))


def test_build_exits_1_with_a_message_when_timing_is_not_met(tmp_path, monkeypatch, capsys):
    """The report of a build whose Fmax is below the clock: exit 1, the reason on stderr."""
    model, _ = netgen.random_case(4, PARAMS)
    save_model(model, tmp_path / "m.npz")

    def fake_build(model, board, directory, **kwargs):
        return {"family": "ice40", "board": board.name, "device": "iCE40UP5K",
                "layers": "x", "scheme": "fifo", "lanes": 1, "fmax_mhz": 9.5,
                "clock_mhz": 12.0, "timing_met": False, "cycles_per_step": 10,
                "samples_per_s": 1.0, "steps_per_sample": 100, "baud": 1_000_000,
                "uart_divisor": 12, "link_samples_per_s": 1.0, "link_activity": 0.05,
                "link_bytes_per_sample": {"host_to_board": 1, "board_to_host": 1},
                "bitstream": "top.bin", "resources": {}}
    monkeypatch.setattr(build_mod, "build", fake_build)
    code = main(["build", str(tmp_path / "m.npz"), "--board", "icebreaker", "-o",
                 str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 1
    assert "timing not met" in err and "9.5 MHz" in err and "12 MHz" in err


@pytest.mark.cocotb
def test_trained_model_on_the_simulated_board(tmp_path, capsys):
    """The trainer's export (synthetic delay task) through the UART top in Verilator."""
    from delayhw import load_input
    from delayhw.train.api import train_task
    report = train_task("synthetic", tmp_path / "model.npz", quiet=True)
    inputs = load_input(report.test_input_path)
    Inputs(inputs.spikes[:8], inputs.labels[:8]).save(tmp_path / "in.npz")
    code = main(["run", str(report.model_path), str(tmp_path / "in.npz"), "--port",
                 "sim:verilator", "--out", str(tmp_path / "r.npz"), "--timeout", "120"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "bit for bit" in out
    result = load_result(tmp_path / "r.npz")
    expected = golden.run(load_model(report.model_path), inputs.spikes[:8])
    np.testing.assert_array_equal(result.scores, expected.scores)
    assert result.accuracy(inputs.labels[:8]) > 0.5      # a trained network, not noise


@pytest.mark.cocotb
def test_run_through_pyserial_on_a_pty(tmp_path, capsys):
    """`delayhw run --port /dev/pts/N`: the pyserial path, with a pseudo-terminal whose other
    end is bridged to the simulated board."""
    import os
    import threading

    from delayhw.sim.board import SimPort
    model, spikes = netgen.random_case(7, PARAMS, batch=2, steps=6)
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes).save(tmp_path / "in.npz")
    master, slave = os.openpty()
    stop = threading.Event()
    bridge_errors = []
    with SimPort(CoreShape.from_model(model), "verilator") as board:
        def host_to_board():
            os.set_blocking(master, False)
            while not stop.is_set():
                try:
                    data = os.read(master, 4096)
                except BlockingIOError:
                    data = b""
                try:
                    if data:
                        board.write(data)
                    reply = board.read(0.005)
                except Exception as exc:    # the CLI stops its children (this board) on exit
                    bridge_errors.append(exc)
                    return
                if reply:
                    os.write(master, reply)
        bridge = threading.Thread(target=host_to_board, daemon=True)
        bridge.start()
        try:
            code = main(["run", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"), "--port",
                         os.ttyname(slave), "--out", str(tmp_path / "r.npz"), "--timeout", "60"])
        finally:
            stop.set()
            bridge.join(5)
    os.close(master)
    os.close(slave)
    assert code == 0, (capsys.readouterr(), bridge_errors)
    expected = golden.run(model, spikes)
    np.testing.assert_array_equal(load_result(tmp_path / "r.npz").scores, expected.scores)
