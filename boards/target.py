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

from .clock import Clocking, PllDomain, clocking


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
    from the oscillator (None: the oscillator itself, no PLL); ``baud``: the default baud rate;
    ``uart``: the UART resource's ``(name, number)``; ``leds``: ``(resource, number[,
    subsignal])`` of the busy and the error LED."""

    name: str
    description: str
    platform: Callable[[], object]
    fabric: Fabric
    oscillator_hz: float
    baud: int
    clock_hz: float | None = None
    uart: tuple[str, int] = ("uart", 0)
    leds: tuple[tuple, tuple] = (("led", 0), ("led", 1))
    #: extra Yosys synth_<family> options, e.g. "-spram"
    synth_opts: str = ""
    notes: str = ""
    #: :attr:`CoreShape.memory` of this board's cores: ``"spram"`` puts the largest weight/
    #: delay memories in iCE40 SPRAM (loaded by the host runtime, not by the bitstream)
    memory: str = "bram"

    def core_shape(self, shape: CoreShape) -> CoreShape:
        """``shape`` as this board builds it (its :attr:`memory`)."""
        return replace(shape, memory=self.memory)

    def clocking(self, clock_hz: float | None = None) -> Clocking:
        """The core clock for a request of ``clock_hz`` (default the board's)."""
        if clock_hz is None:
            clock_hz = self.clock_hz or self.oscillator_hz
        return clocking(self.name, self.fabric.family, self.oscillator_hz, clock_hz)

    def top(self, shape: CoreShape, model: Model | None, clock: Clocking,
            baud: int | None = None) -> Elaboratable:
        return PlatformTop(self, shape, model, clock, clock.divisor(baud or self.baud))


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
        m.submodules.board = top = BoardTop(self.shape, self.divisor, self.model)
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
