"""An 8N1 UART: receiver and transmitter with byte streams (in the style of amaranth-stdio's
``AsyncSerialRX``/``AsyncSerialTX``, written here; that package cannot be a dependency).

``divisor`` is clock cycles per bit (clock frequency / baud), at least 4.
"""


from amaranth import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


def _check_divisor(divisor: int) -> int:
    if divisor < 4:
        raise ValueError(f"UART divisor {divisor}: at least 4 clock cycles per bit")
    return divisor


class UARTRX(wiring.Component):
    """Receives 8N1 bytes on ``rx`` (an asynchronous pin, synchronised here).

    ``o`` offers each received byte until taken; a byte that completes while the previous
    one is still waiting is dropped and pulses ``overrun``. A byte whose stop bit is 0 is
    dropped and pulses ``frame_error`` (the line is then re-armed on the next idle-to-start
    edge).
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    overrun: Out(1)
    frame_error: Out(1)

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor))
        bits = Signal(range(10))
        shreg = Signal(10)          # start, 8 data (LSB first), stop
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):       # first sample in the middle of the start bit
                    m.d.sync += [timer.eq(self.divisor // 2 - 1), bits.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self.divisor - 1), shreg.eq(Cat(shreg[1:], rx)),
                                 bits.eq(bits + 1)]
                    with m.If((bits == 0) & rx):            # start bit gone: a glitch
                        m.next = "IDLE"
                    with m.Elif(bits == 9):
                        m.next = "DONE"
            with m.State("DONE"):
                with m.If(~shreg[9]):
                    m.d.comb += self.frame_error.eq(1)
                    m.next = "WAIT_IDLE"
                with m.Else():
                    with m.If(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg[1:9]), self.o.valid.eq(1)]
                    m.next = "IDLE"
            with m.State("WAIT_IDLE"):              # a break or noise: wait for the line to idle
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTX(wiring.Component):
    """Sends each byte of ``i`` as 8N1 on ``tx`` (idle high)."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(range(11))
        shreg = Signal(10, init=0x3FF)
        m.d.comb += self.tx.eq(shreg[0])
        with m.If(bits == 0):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [shreg.eq(Cat(0, self.i.payload, 1)), bits.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [shreg.eq(Cat(shreg[1:], 1)), bits.eq(bits - 1),
                             timer.eq(self.divisor - 1)]
        return m
