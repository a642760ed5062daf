"""What the build flow needs to know about a board: its amaranth-boards platform, the FPGA's
resources, the oscillator and the core's default clock (a PLL output), the baud rate and
which pins carry the UART and the two LEDs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from amaranth import Elaboratable, Module
from amaranth.lib import io

from delayhw.gateware.board_top import BoardTop
from delayhw.gateware.shape import CoreShape
from delayhw.spec import Model

from .clock import MAX_BAUD_ERROR, Clocking, PllDomain, clocking


#: the fewest clock cycles per bit of a default baud rate (8x oversampling: the receiver's
#: sample lands within 1/8 bit of the middle, against 1/4 at the UART's 4-cycle minimum,
#: which ``--baud`` may still ask for)
DEFAULT_CYCLES_PER_BIT = 8


@dataclass(frozen=True)
class Bridge:
    """A USB-UART bridge (FTDI's rule): it makes ``base_hz / d`` baud for ``d`` = 1, 1.5, then
    2 and up in eighths, up to ``max_baud`` (FTDI AN232B-05)."""

    name: str
    base_hz: int
    max_baud: int

    def makes(self, baud: int) -> bool:
        """Whether the bridge makes exactly ``baud``."""
        if not 0 < baud <= self.max_baud or (8 * self.base_hz) % baud:
            return False
        eighths = 8 * self.base_hz // baud
        return eighths in (8, 12) or eighths >= 16

    def default_baud(self, clock: Clocking) -> int:
        """The fastest rate the bridge makes exactly that the FPGA's UART meets with at least
        :data:`DEFAULT_CYCLES_PER_BIT` clock cycles per bit (an integer divisor of ``clock``)
        within half of :data:`~delayhw.boards.clock.MAX_BAUD_ERROR` (the other half left to
        the bridge's oscillator)."""
        for eighths in [8, 12] + list(range(16, 8 * 65536)):
            baud = 8 * self.base_hz // eighths
            if (8 * self.base_hz) % eighths or not self.makes(baud):
                continue
            if (clock.divisor(baud) >= DEFAULT_CYCLES_PER_BIT
                    and clock.baud_error(baud) <= MAX_BAUD_ERROR / 2):
                return baud
        raise ValueError(f"{self.name}: no baud rate fits the {clock.hz / 1e6:g} MHz clock")


#: FTDI FT2232H (iCEBreaker): 12 MHz baud base, up to 12 Mbaud
FT2232H = Bridge("FT2232H", 12_000_000, 12_000_000)
#: FTDI FT231X (ULX3S), and a 3.3 V FT232R-class adapter (OrangeCrab): 3 MHz base, 3 Mbaud
FT231X = Bridge("FT231X", 3_000_000, 3_000_000)
FT232R = Bridge("FT232R (external 3.3 V adapter)", 3_000_000, 3_000_000)


@dataclass(frozen=True)
class Fabric:
    """An FPGA's resources. Block RAM ``bram`` blocks of ``bram_bits``, with the
    ``(width, depth)`` configurations a 1-read-1-write memory can use; ``spram`` single-port
    blocks of ``spram_bits``; ``dsp`` multipliers of ``dsp_width`` x ``dsp_width`` bits;
    ``lc`` logic cells (iCE40 LC / ECP5 LUT4), ``ff`` flip-flops."""

    family: str                   #: "ice40" or "ecp5" (nextpnr-<family>)
    device: str
    lc: int
    ff: int
    bram: int
    bram_bits: int
    bram_configs: tuple[tuple[int, int], ...]
    dsp: int
    dsp_width: int
    spram: int = 0
    spram_bits: int = 0


ICE40UP5K = Fabric("ice40", "iCE40UP5K", lc=5280, ff=5280, bram=30, bram_bits=4096,
                   bram_configs=((16, 256), (8, 512), (4, 1024), (2, 2048)),
                   dsp=8, dsp_width=16, spram=4, spram_bits=256 * 1024)


def ecp5(device: str, luts: int, ebr: int, mult18: int) -> Fabric:
    return Fabric("ecp5", device, lc=luts, ff=luts, bram=ebr, bram_bits=18 * 1024,
                  bram_configs=((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192),
                                (1, 16384)),
                  dsp=mult18, dsp_width=18)


ECP5_25F = ecp5("LFE5U-25F", 24288, 56, 28)
ECP5_85F = ecp5("LFE5U-85F", 83640, 208, 156)


@dataclass(frozen=True)
class Board:
    """One board target. ``oscillator_hz``: the clock on the board's clock pin (the
    platform's default clock); ``clock_hz``: the core's default clock, made by the FPGA's PLL
    from the oscillator (None: the oscillator itself, no PLL); ``bridge``: the USB-UART
    bridge the host talks through, whose rates and the clock give the default baud rate
    (:meth:`default_baud`); ``uart``: the UART resource's ``(name, number)``; ``leds``:
    ``(resource, number[, subsignal])`` of the busy and the error LED."""

    name: str
    description: str
    platform: Callable[[], object]
    fabric: Fabric
    oscillator_hz: float
    bridge: Bridge
    clock_hz: float | None = None
    uart: tuple[str, int] = ("uart", 0)
    leds: tuple[tuple, tuple] = (("led", 0), ("led", 1))
    #: extra Yosys synth_<family> options, e.g. "-spram"
    synth_opts: str = ""
    notes: str = ""
    #: :attr:`CoreShape.memory` of this board's cores: ``"spram"`` puts the largest weight/
    #: delay memories in iCE40 SPRAM (loaded by the host runtime, not by the bitstream)
    memory: str = "bram"
    #: :attr:`CoreShape.input_ram` of this board's cores: ``"lut"`` (ECP5 boards) puts the
    #: two input bitmaps in LUT RAM; iCE40 boards keep ``"auto"`` (refused otherwise)
    input_ram: str = "auto"

    def core_shape(self, shape: CoreShape) -> CoreShape:
        """``shape`` as this board builds it (its :attr:`memory` and :attr:`input_ram`)."""
        shape = replace(shape, memory=self.memory, input_ram=self.input_ram)
        shape.check_family(self.fabric.family)
        return shape

    def clocking(self, clock_hz: float | None = None) -> Clocking:
        """The core clock for a request of ``clock_hz`` (default the board's)."""
        if clock_hz is None:
            clock_hz = self.clock_hz or self.oscillator_hz
        return clocking(self.name, self.fabric.family, self.oscillator_hz, clock_hz)

    def default_baud(self, clock: Clocking | None = None) -> int:
        """The default baud rate at ``clock`` (default the board's): the bridge's fastest
        that the clock's UART divisor meets (:meth:`Bridge.default_baud`)."""
        return self.bridge.default_baud(clock or self.clocking())

    @property
    def baud(self) -> int:
        """The default baud rate at the board's default clock."""
        return self.default_baud()

    def top(self, shape: CoreShape, model: Model | None, clock: Clocking,
            baud: int | None = None) -> Elaboratable:
        return PlatformTop(self, shape, model, clock,
                           clock.divisor(baud or self.default_baud(clock)))


class PlatformTop(Elaboratable):
    """:class:`BoardTop` with its pins on the board's UART and LEDs, clocked by ``clock``
    (through the PLL when it has one; else the platform makes the clock from the oscillator)."""

    def __init__(self, board: Board, shape: CoreShape, model: Model | None, clock: Clocking,
                 divisor: int):
        self.board, self.shape, self.model, self.clock, self.divisor = (
            board, shape, model, clock, divisor)

    def elaborate(self, platform):
        m = Module()
        if self.clock.pll is not None:
            m.domains.sync = self.clock.sync_domain()
            m.submodules.clock = PllDomain(self.clock)
        from .fit import bench_memories
        store, events = bench_memories(self.shape, self.board)
        m.submodules.board = top = BoardTop(self.shape, self.divisor, self.model,
                                            store_bytes=store, event_words=events)
        uart = platform.request(*self.board.uart, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        requested = {}

        def led(name, number, subsignal=None):
            if (name, number) not in requested:
                requested[name, number] = platform.request(name, number, dir="-")
            pins = requested[name, number]
            buffer = io.Buffer("o", getattr(pins, subsignal) if subsignal else pins)
            m.submodules[f"led_{name}_{number}_{subsignal or ''}"] = buffer
            return buffer

        busy, error = (led(*spec) for spec in self.board.leds)
        m.d.comb += [top.rx.eq(rx.i), tx.o.eq(top.tx),
                     busy.o.eq(top.led_busy), error.o.eq(top.led_error)]
        return m
