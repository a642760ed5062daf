"""A board's top: the core behind a UART host link, with busy and error outputs for LEDs.

Pins only (``rx``, ``tx``, ``led_busy``, ``led_error``), so the same component is placed on a
board by :mod:`delayhw.boards` and simulated as Verilog by :mod:`delayhw.sim.board`.
"""


from amaranth import Module
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from delayhw.spec import Model

from . import hostlink_protocol as hp
from .core import Core
from .hostlink import HostLink
from .shape import CoreShape
from .uart import UARTRX, UARTTX

#: bytes the receiver can hold while the link is busy with a frame (the host waits for each
#: frame's reply, so only stray bytes ever wait here)
RX_FIFO_DEPTH = 16


class BoardTop(wiring.Component):
    """Core + UART (``divisor`` clock cycles per bit) + :class:`HostLink`.

    ``led_busy`` is high while the core computes or the link is sending; ``led_error`` is high
    from a bad frame until the next STATUS request. ``model`` initialises the core's memories
    (the bitstream carries the network); without it they start empty. ``store_bytes``: the
    on-board benchmark's sample store, ``event_words``: the output events the link buffers
    on their way to the UART (0: none; ``delayhw.boards.fit.bench_memories`` sizes both for
    a board).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    led_busy: Out(1)
    led_error: Out(1)

    def __init__(self, shape: CoreShape, divisor: int, model: Model | None = None,
                 max_payload: int = hp.DEFAULT_MAX_PAYLOAD, store_bytes: int = 0,
                 event_words: int = 0):
        self.shape, self.divisor, self.model, self.max_payload = shape, divisor, model, max_payload
        self.store_bytes, self.event_words = store_bytes, event_words
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Core(self.shape, self.model)
        m.submodules.uart_rx = uart_rx = UARTRX(self.divisor)
        m.submodules.uart_tx = uart_tx = UARTTX(self.divisor)
        m.submodules.rx_fifo = rx_fifo = fifo.SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        m.submodules.link = link = HostLink(hp.shape_id(self.shape), self.shape.score_bits,
                                           self.shape.n_inputs, self.max_payload,
                                           self.store_bytes, self.event_words)
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        m.d.comb += [rx_fifo.w_data.eq(uart_rx.o.payload), rx_fifo.w_en.eq(uart_rx.o.valid),
                     uart_rx.o.ready.eq(rx_fifo.w_rdy),
                     link.rx.payload.eq(rx_fifo.r_data), link.rx.valid.eq(rx_fifo.r_rdy),
                     rx_fifo.r_en.eq(link.rx.ready)]
        wiring.connect(m, link.tx, uart_tx.i)
        wiring.connect(m, link.inputs, core.inputs)
        wiring.connect(m, link.config, core.config)
        wiring.connect(m, core.outputs, link.outputs)
        m.d.comb += link.status.eq(core.status)
        m.d.comb += [self.led_busy.eq(core.status.busy | uart_tx.i.valid),
                     self.led_error.eq(link.error)]
        return m
