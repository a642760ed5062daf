"""Single-port memories (gateware/memories.py): the behavioural memory against a Python model
of the contract, the weight/delay packing, the SPRAM tiling, the choice of which layers go to
SPRAM, and a core with SPRAM co-simulated with Yosys's SB_SPRAM256KA model against the golden
model."""

import random

import numpy as np
import pytest
from amaranth import Fragment, Instance
from amaranth.sim import Simulator

from delayhw import DelayhwError
from delayhw.gateware.memories import (SinglePortMemory, SynapseMemory, spram_blocks,
                                       spram_simulation_model)
from delayhw.gateware.shape import CoreShape
from delayhw.netgen import sized_model
from delayhw.sim.tools import icarus_available

# a memory refused in its constructor is never elaborated
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_single_port_memory_follows_its_contract():
    """Random reads, nibble-masked writes and idle cycles: every read returns the model's
    word the next cycle and holds it while ``en`` is low; a write is done the cycle after it
    is presented, and that cycle reads nothing."""
    width, depth = 12, 16
    init = [random.Random(k).randrange(1 << width) for k in range(depth)]
    dut = SinglePortMemory(width=width, depth=depth, init=init)
    model = list(init)
    rng = random.Random(7)

    async def bench(ctx):
        expect, pending = None, None
        for _ in range(400):
            op = rng.choice(["read", "read", "write", "idle"])
            addr, wr_addr = rng.randrange(depth), rng.randrange(depth)
            read = op == "read" or (op == "write" and rng.random() < 0.5)
            ctx.set(dut.addr, addr)
            ctx.set(dut.en, read)
            mask = rng.randrange(1, 8) if op == "write" else 0
            value = rng.randrange(1 << width)
            ctx.set(dut.wr_addr, wr_addr)
            ctx.set(dut.wr_en, mask)
            ctx.set(dut.wr_data, value)
            await ctx.tick()
            if pending is not None:          # the write presented a cycle ago is done now
                w_addr, w_mask, w_value = pending
                for n in range(3):
                    if w_mask >> n & 1:
                        keep = ~(0xF << 4 * n) & ((1 << width) - 1)
                        model[w_addr] = model[w_addr] & keep | w_value & (0xF << 4 * n)
                expect = None                # ... and this cycle read nothing
            elif read:
                expect = model[addr]
            pending = (wr_addr, mask, value) if op == "write" else None
            if expect is not None:
                assert ctx.get(dut.data) == expect

    _run(dut, bench)


@pytest.mark.parametrize("w_bits, d_bits, lanes", [(8, 4, 1), (8, 5, 2), (5, 3, 4)])
def test_synapse_memory_writes_weight_and_delay_of_one_lane_only(w_bits, d_bits, lanes):
    depth = 8
    rng = np.random.default_rng(w_bits + lanes)
    lo, hi = -(1 << w_bits - 1), 1 << w_bits - 1
    w = rng.integers(lo, hi, (depth, lanes)).tolist()
    d = rng.integers(0, 1 << d_bits, (depth, lanes)).tolist()
    dut = SynapseMemory(w_bits=w_bits, d_bits=d_bits, lanes=lanes, depth=depth, w_init=w,
                        d_init=d)
    assert dut.memory.width == lanes * (4 * -(-w_bits // 4) + 4 * -(-d_bits // 4))

    async def read_all(ctx):
        rows = []
        for r in range(depth):
            ctx.set(dut.addr, r)
            ctx.set(dut.en, 1)
            await ctx.tick()
            rows.append(([ctx.get(dut.w[l]) for l in range(lanes)],
                         [ctx.get(dut.d[l]) for l in range(lanes)]))
        ctx.set(dut.en, 0)
        return rows

    async def bench(ctx):
        assert await read_all(ctx) == list(zip(w, d))           # the initial contents
        for _ in range(20):
            r, l = int(rng.integers(depth)), int(rng.integers(lanes))
            port, table, value = ((dut.w_wr, w, int(rng.integers(lo, hi)))
                                  if rng.random() < 0.5 else
                                  (dut.d_wr, d, int(rng.integers(1 << d_bits))))
            ctx.set(port.addr, r)
            ctx.set(port.en, 1 << l)
            ctx.set(port.data[l], value)
            # the engine's read address points elsewhere: the write must take its own
            ctx.set(dut.addr, (r + 1) % depth)
            await ctx.tick()
            ctx.set(port.en, 0)
            table[r][l] = value
        await ctx.tick()                # the last write takes the port in this cycle
        assert await read_all(ctx) == list(zip(w, d))

    _run(dut, bench)


def _instances(fragment, kind):
    found = []
    for sub, _, _ in fragment.subfragments:
        if isinstance(sub, Instance):
            found += [sub] if sub.type == kind else []
        else:
            found += _instances(sub, kind)
    return found


@pytest.mark.parametrize("width, depth, blocks", [(12, 8192, 1), (16, 16384, 1),
                                                  (20, 16385, 4), (64, 640, 4)])
def test_spram_tiles_width_and_depth(width, depth, blocks):
    assert spram_blocks(width, depth) == blocks
    mem = SinglePortMemory(width=width, depth=depth, spram=True)
    assert len(_instances(Fragment.get(mem, None), "SB_SPRAM256KA")) == blocks


def test_spram_refuses_initial_contents():
    with pytest.raises(ValueError, match="SPRAM cannot be initialised"):
        SinglePortMemory(width=16, depth=4, init=[1, 2], spram=True)


def test_spram_goes_to_the_large_synapse_memories_only():
    medium = sized_model(64, 64, 10, 16, True)
    shape = CoreShape.from_model(medium, memory="spram")
    # 64 x 128 synapses of {8-bit w, 5-bit d} = 8192 x 16 bits: one SPRAM; the readout's
    # 640 x 16 bits are below the threshold and stay in block RAM
    assert shape.spram_layers() == (True, False)
    assert CoreShape.from_model(medium).spram_layers() == (False, False)
    # four lanes: 2048 rows x 64 bits = 4 SPRAM blocks, the UP5K's all
    assert CoreShape.from_model(medium, lanes=4, memory="spram").spram_layers() == (True, False)
    with pytest.raises(DelayhwError, match="memory: 'sram' is not available"):
        CoreShape.from_model(medium, memory="sram")


def test_spram_simulation_model_is_yosys_cell():
    text = spram_simulation_model()
    assert text.startswith("module SB_SPRAM256KA") and text.rstrip().endswith("endmodule")
    assert "MASKWREN" in text


@pytest.mark.cocotb
@pytest.mark.skipif(not icarus_available(), reason="iverilog is not installed")
@pytest.mark.parametrize("scheme, lanes", [("fifo", 1), ("ring", 1), ("ring", 2)])
def test_core_with_spram_is_bit_exact_in_icarus(scheme, lanes):
    """The core with its first layer's synapses in SB_SPRAM256KA (Yosys's cell model; two
    lanes make a 24-bit word over two blocks), the model loaded through the configuration
    stream, against the golden model."""
    from delayhw import netgen
    from delayhw.sim import cosim
    model = sized_model(48, 24, 4, 6, True, seed=3)
    shape = CoreShape.from_model(model, lanes, scheme, memory="spram")
    assert shape.spram_layers() == (True, False)
    spikes = netgen.random_spikes(np.random.default_rng(2), 2, 8, model.n_inputs, 0.2)
    run = cosim.run_rtl(model, spikes, sim="icarus", scheme=scheme, lanes=lanes,
                        memory="spram")
    difference = cosim.compare(model, spikes, run.result)
    assert difference is None, str(difference)
    assert run.result.spikes[0].any()          # the network is not silent


def test_icebreaker_fit_check_counts_the_spram_the_core_instantiates():
    """The medium model (41 EBR as two-port weight and delay memories) fits the iCEBreaker:
    its first layer's synapses take one SPRAM, as the place and route found (docs/boards.md);
    an ECP5 board builds the same model in block RAM only."""
    from delayhw.boards.fit import fit_check
    from delayhw.boards.targets import get_board
    shape = CoreShape.from_model(sized_model(64, 64, 10, 16, True))
    report = fit_check(shape, get_board("icebreaker"))
    rows = {r.resource: r for r in report.rows}
    assert rows["SPRAM (256 kbit)"].needed == 1
    assert [m.kind for m in report.memories if m.spram] == [
        "core.layer0.synapses.memory.spram0_0.SB_SPRAM256KA"]
    assert rows["block RAM: EBR (4 kbit)"].needed <= 30 and report.fits
    ecp5 = fit_check(shape, get_board("ulx3s-85f"))
    assert not any(m.spram for m in ecp5.memories)
    assert "SPRAM (256 kbit)" not in {r.resource for r in ecp5.rows}
