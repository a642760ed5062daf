"""Does a core fit a board? An estimate from the core's memories and arithmetic, made before
any tool runs (milliseconds: the core is elaborated empty, no synthesis).

* Block RAM: each memory of the core (from the elaborated core, so every scheme is covered)
  takes ``min over configurations of ceil(width / w) * ceil(depth / d)`` blocks, as Yosys maps
  one memory per set of blocks; memories of at most :data:`LOGIC_MEMORY_BITS` bits or
  :data:`LOGIC_MEMORY_DEPTH` rows become flip-flops (what Yosys did in the measured builds).
  A memory that asks for LUT RAM (``ram_style "distributed"``: the input memories of an ECP5
  build, :attr:`CoreShape.input_ram`) takes no block RAM but logic (:func:`lut_ram_cells`).
* SPRAM: the ``SB_SPRAM256KA`` blocks the core instantiates (a board whose
  :attr:`Board.memory` is ``"spram"`` puts its largest weight/delay memories there,
  :meth:`CoreShape.spram_layers`); Yosys infers none by itself (docs/boards.md).
* The on-board benchmark's event buffer and sample store (:func:`bench_memories`): at most
  half of the block RAM the rest of the board top leaves free.
* DSP: one multiplier per lane and layer (``v * beta``, ``v_bits`` x ``f_bits + 1``), in
  ``ceil(a / dsp_width) * ceil(b / dsp_width)`` DSP blocks; what does not fit goes to logic.
* Logic: :func:`logic_estimate`, fitted (least squares) on the board-top builds of
  ``bench/results/boards.json`` (docs/boards.md gives the rule and its error per build), plus
  :data:`LUT_RAM_LUT_PER_CELL` LUT4 per LUT RAM cell; a model is refused when the estimate
  exceeds the device by more than :data:`LOGIC_MARGIN`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from amaranth.hdl import Fragment, Instance, MemoryData, Shape

from delayhw.gateware.board_top import BoardTop
from delayhw.gateware.memory_geometry import SPRAM_DEPTH, SPRAM_WIDTH
from delayhw.gateware.shape import CoreShape

from .target import Board, Fabric

SPRAM_CELL = "SB_SPRAM256KA"
LOGIC_MEMORY_BITS = 64
LOGIC_MEMORY_DEPTH = 4
LOGIC_MARGIN = 1.15
#: ECP5 LUT4 of the board top: ``BASE + W * (FIRST_LANE + EXTRA_LANE * (lanes - 1))``, plus
#: the scheme's own ``W * (first + extra * (lanes - 1))`` (:attr:`SchemeCost.lut_per_bit
#: <delayhw.gateware.schemes.cost.SchemeCost.lut_per_bit>`: 0 for fifo, 7.2 and 3.9 for
#: ring), where W is the sum over layers of the datapath bits ``v_bits + acc_bits + w_bits +
#: d_bits``. Least squares on the seven ECP5 builds of bench/results/boards.json (demo,
#: medium, SHD-size; fifo and ring; 1 and 8 lanes): every one within 5% (docs/boards.md).
BASE_LUT = 138
FIRST_LANE_LUT_PER_BIT = 28.9
EXTRA_LANE_LUT_PER_BIT = 7.5
#: iCE40 logic cells per ECP5 LUT4 of the same board top (the demo, fifo: 3,003 LC on the
#: iCEBreaker, 2,351 and 2,361 LUT4 on the OrangeCrab and the ULX3S-85F)
ICE40_LC_PER_LUT4 = 1.28
#: ECP5 LUT4 per ``TRELLIS_DPR16X4`` (16 x 4 bits) of a memory asked into LUT RAM: its own
#: LUTs, the write decode and the read mux. Measured on the SHD-size ring (bench/fmax.py,
#: ECP5-85F): the two 700 x 1 input bitmaps (88 cells) added 721 LUT4 at 8 lanes; the
#: 1,400 x 28 input event list (616 cells), in LUT RAM in an experiment, 6,032 at 16 lanes.
#: Counted at the memory's declared width: Yosys drops columns that are always 0, so this
#: is an upper bound
LUT_RAM_LUT_PER_CELL = 10
#: logic cells of one 16 x 16 multiplier built of logic (when the DSPs run out)
MULTIPLIER_LC = 256
#: the sample store's size limits: no store below the first, at most the second
MIN_STORE_BYTES, MAX_STORE_BYTES = 256, 1 << 16
#: the event buffer of a board top with room for it, and its memory's name
EVENT_WORDS = 256
EVENT_BUFFER = "link.events."


@dataclass(frozen=True)
class MemoryUse:
    kind: str
    depth: int
    width: int
    blocks: int                 #: block RAMs (0 for SPRAM or logic)
    spram: int = 0              #: SPRAM blocks
    lut_ram: int = 0            #: ECP5 LUT RAM cells (``TRELLIS_DPR16X4``)


@dataclass(frozen=True)
class FitRow:
    resource: str
    needed: int
    available: int
    fits: bool
    note: str = ""


@dataclass(frozen=True)
class FitReport:
    board: str
    device: str
    rows: tuple[FitRow, ...]
    memories: tuple[MemoryUse, ...]

    @property
    def fits(self) -> bool:
        return all(r.fits for r in self.rows)

    def as_dict(self) -> dict:
        return {"board": self.board, "device": self.device, "fits": self.fits,
                "rows": [asdict(r) for r in self.rows],
                "memories": [asdict(m) for m in self.memories]}

    def table(self) -> str:
        lines = [f"{'resource':<22}{'needed':>10}{'available':>11}  fits",
                 "-" * 50]
        for r in self.rows:
            lines.append(f"{r.resource:<22}{r.needed:>10,}{r.available:>11,}  "
                         f"{'yes' if r.fits else 'NO'}{'  ' + r.note if r.note else ''}")
        return "\n".join(lines)


def memory_blocks(depth: int, width: int, fabric: Fabric) -> int:
    """Block RAMs one memory of ``depth`` x ``width`` bits takes (0 if it becomes logic)."""
    if depth * width <= LOGIC_MEMORY_BITS or depth <= LOGIC_MEMORY_DEPTH:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in fabric.bram_configs)


def lut_ram_cells(depth: int, width: int) -> int:
    """``TRELLIS_DPR16X4`` cells (16 x 4 bits) of a ``depth`` x ``width`` LUT RAM."""
    return math.ceil(depth / 16) * math.ceil(width / 4)


def core_memories(shape: CoreShape, store: int = 0,
                  events: int = 0) -> list[tuple[str, int, int, bool]]:
    """``(name, depth, width, lut_ram)`` of every memory of the board top of ``shape`` (core,
    output queue, the link's buffers, a sample store of ``store`` bytes and an event buffer
    of ``events`` words), found by walking the elaborated design (memories empty), so
    any delay scheme is covered without knowing its internals; ``lut_ram``: it asks
    synthesis for LUT RAM (``ram_style "distributed"``). An ``SB_SPRAM256KA`` block is
    listed as ``(name, 16384, 16, False)`` with a name ending in ``.SB_SPRAM256KA``."""
    found = []

    def walk(fragment, path):
        for sub, name, _ in fragment.subfragments:
            here = path + (str(name),)
            data = getattr(sub, "_data", None)          # an amaranth MemoryInstance
            if isinstance(data, MemoryData):
                lut_ram = sub._attrs.get("ram_style") == "distributed"
                found.append((".".join(here), data.depth, Shape.cast(data.shape).width,
                              lut_ram))
            elif isinstance(sub, Instance):
                if sub.type == SPRAM_CELL:
                    found.append((".".join(here + (SPRAM_CELL,)), SPRAM_DEPTH, SPRAM_WIDTH,
                                  False))
            else:
                walk(sub, here)
    walk(Fragment.get(BoardTop(shape, divisor=4, store_bytes=store, event_words=events),
                      None), ())
    return found


def bench_memories(shape: CoreShape, board: Board) -> tuple[int, int]:
    """``(store_bytes, event_words)`` of ``shape``'s board top on ``board``: the on-board
    benchmark takes at most half of the block RAM the rest of the board top leaves free (by
    this module's count): first the event buffer of :data:`EVENT_WORDS` output events if
    it fits in that half (else none, 0), then the sample store, the largest power of two
    from :data:`MIN_STORE_BYTES` to :data:`MAX_STORE_BYTES` bytes in what is left of the
    half (else none, 0)."""
    fabric = board.fabric
    shape = board.core_shape(shape)
    used = events = 0
    for kind, depth, width, lut_ram in core_memories(shape, events=EVENT_WORDS):
        blocks = 0 if kind.endswith(SPRAM_CELL) or lut_ram \
            else memory_blocks(depth, width, fabric)
        if kind.startswith(EVENT_BUFFER):
            events += blocks
        else:
            used += blocks
    half = (fabric.bram - used) // 2
    event_words = EVENT_WORDS if events <= half else 0
    left = half - events if event_words else half
    size = MAX_STORE_BYTES
    while size >= MIN_STORE_BYTES and memory_blocks(size, 8, fabric) > left:
        size //= 2
    return (size if size >= MIN_STORE_BYTES else 0), event_words


def dsp_blocks(shape: CoreShape, fabric: Fabric) -> int:
    n = fabric.dsp_width
    return sum(shape.lanes * math.ceil(l.v_bits / n) * math.ceil((l.f_bits + 1) / n)
               for l in shape.layers)


def logic_estimate(shape: CoreShape, family: str, dsp_in_logic: int = 0) -> int:
    """Logic cells (iCE40) or LUT4 (ECP5) of the whole board top: the rule above."""
    width = sum(l.v_bits + l.acc_bits + l.w_bits + l.d_bits for l in shape.layers)
    extra = shape.lanes - 1
    scheme_first, scheme_extra = shape.cost.lut_per_bit
    lut = BASE_LUT + width * (FIRST_LANE_LUT_PER_BIT + EXTRA_LANE_LUT_PER_BIT * extra)
    lut += width * (scheme_first + scheme_extra * extra)
    lc = lut * (ICE40_LC_PER_LUT4 if family == "ice40" else 1)
    return round(lc + dsp_in_logic * MULTIPLIER_LC)


def fit_check(shape: CoreShape, board: Board) -> FitReport:
    """Does ``shape``, built as ``board`` builds it (:meth:`Board.core_shape`), fit?"""
    fabric = board.fabric
    shape = board.core_shape(shape)
    memories, bram, spram, lut_ram = [], 0, 0, 0
    for kind, depth, width, in_lut_ram in core_memories(shape, *bench_memories(shape, board)):
        if kind.endswith(SPRAM_CELL):
            memories.append(MemoryUse(kind, depth, width, 0, 1))
            spram += 1
            continue
        if in_lut_ram:
            cells = lut_ram_cells(depth, width)
            memories.append(MemoryUse(kind, depth, width, 0, lut_ram=cells))
            lut_ram += cells
            continue
        blocks = memory_blocks(depth, width, fabric)
        memories.append(MemoryUse(kind, depth, width, blocks))
        bram += blocks
    dsp = dsp_blocks(shape, fabric)
    spill = max(0, dsp - fabric.dsp)
    lc = logic_estimate(shape, fabric.family, spill) + LUT_RAM_LUT_PER_CELL * lut_ram
    bram_name = "EBR (4 kbit)" if fabric.family == "ice40" else "EBR (18 kbit)"
    rows = (
        FitRow(f"block RAM: {bram_name}", bram, fabric.bram, bram <= fabric.bram,
               f"{sum(m.depth * m.width for m in memories if m.blocks):,} bits in "
               f"{sum(1 for m in memories if m.blocks)} memories"),
        FitRow("DSP multipliers", dsp, fabric.dsp, True,
               f"{spill} in logic" if spill else ""),
        FitRow("logic cells (estimate)", lc, fabric.lc, lc <= LOGIC_MARGIN * fabric.lc,
               "refused above " f"{LOGIC_MARGIN:.0%} of the device"
               + (f"; {lut_ram:,} LUT RAM cells" if lut_ram else "")),
    )
    if fabric.spram:
        rows += (FitRow(f"SPRAM ({fabric.spram_bits // 1024} kbit)", spram, fabric.spram,
                        spram <= fabric.spram, "largest weight/delay memories" if spram else ""),)
    return FitReport(board.name, fabric.device, rows, tuple(memories))
