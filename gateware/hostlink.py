"""The board side of the host link: frames from a byte stream into the core's configuration
and input streams, the core's output events and the link's replies into frames.

The wire format is :mod:`delayhw.gateware.hostlink_protocol`: the frame constants and every
payload's byte layout (its :class:`~hostlink_protocol.Record` tables, themselves derived from
the core's field table in :mod:`delayhw.gateware.wire`) are taken from there, none written
here by hand.
A frame is received whole into a buffer and checked (SLIP escapes, length, CRC, type) before
anything of it reaches the core: a bad frame gets an ERROR reply and is forgotten, and the
receiver resynchronises at the next END byte.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetInserter, Signal, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from . import hostlink_protocol as hp
from .core import (CONFIG_LAYOUT, INPUT_LAYOUT, STATUS_LAYOUT, count_saturating,
                   output_layout)
from .wire import COUNTER_BITS, InKind, OutKind, code_bits

BYTE = hp.BYTE_BITS

#: bytes a reply/event frame carries at most: the largest board-to-host payload (the STATUS
#: reply's 13; a SCORE's 10) rounded up to a power of two, so a byte index selects it
TX_PAYLOAD_BYTES = 1 << (max(r.size for r in (hp.STATUS, hp.SCORE, hp.SPIKE, hp.SAMPLE, hp.BENCH))
                         - 1).bit_length()
TX_REQUEST = data.StructLayout({"type": BYTE, "len": BYTE, "payload": BYTE * TX_PAYLOAD_BYTES})


def record_bytes(m: Module, record: hp.Record, prefix: str, **values):
    """The bytes of one ``record`` (byte ``n`` at bits ``8n..8n+7``), each field from its
    Amaranth value in ``values``, zero- or sign-extended (by the value's signedness) or
    truncated to the field's bytes."""
    parts = []
    for name, size, is_signed in record.fields:
        field = Signal(signed(BYTE * size) if is_signed else BYTE * size, name=f"{prefix}_{name}")
        m.d.comb += field.eq(values[name])
        parts.append(field)
    return Cat(*parts)


def record_fields(m: Module, record: hp.Record, raw, target) -> None:
    """Drive each field of ``target`` (a view whose dotted field names are the record's) from
    its bytes in ``raw``; an unsigned value too large for its field saturates to all ones
    (e.g. a configuration ``field`` byte above the codes: an invalid code, never an alias)."""
    for name, size, is_signed in record.fields:
        dest = target
        for part in name.split("."):
            dest = getattr(dest, part)
        at = BYTE * record.offset(name)
        value = raw[at:at + BYTE * size]
        top = (1 << len(dest)) - 1
        if not is_signed and BYTE * size > len(dest):
            value = Mux(value > top, top, value)
        m.d.comb += dest.eq(value)


def _crc_taps() -> list[list[int]]:
    """For each bit of the next CRC, the bits of ``Cat(crc, byte)`` it is the XOR of (the
    update is linear over GF(2), so it is found by updating each input bit alone)."""
    taps = [[] for _ in range(hp.CRC_BITS)]
    for n in range(hp.CRC_BITS + BYTE):
        crc, byte = (1 << n, 0) if n < hp.CRC_BITS else (0, 1 << (n - hp.CRC_BITS))
        out = hp.crc16([byte], crc)
        for bit in range(hp.CRC_BITS):
            if out >> bit & 1:
                taps[bit].append(n)
    return taps


_CRC_TAPS = _crc_taps()


def crc16_next(crc, byte):
    """CRC-16/CCITT-FALSE of ``crc`` updated with ``byte`` (an Amaranth expression; the same
    function as :func:`hostlink_protocol.crc16`, as one XOR tree per bit)."""
    bits = Cat(crc, byte)
    return Cat(*[Cat(*[bits[n] for n in taps]).xor() for taps in _CRC_TAPS])


class FrameSender(wiring.Component):
    """Sends one frame per request: ``TYPE LEN PAYLOAD[LEN] CRC_HI CRC_LO`` SLIP-escaped, then
    END. ``len`` must not exceed :data:`TX_PAYLOAD_BYTES`; payload byte ``n`` is bits
    ``8n..8n+7`` of ``payload``."""

    def __init__(self):
        super().__init__({"i": In(stream.Signature(TX_REQUEST)), "o": Out(stream.Signature(BYTE))})

    def elaborate(self, platform):
        m = Module()
        # the frame's bytes in a shift register (the byte on the wire is always its low byte:
        # no byte-select logic in the path), TYPE LEN PAYLOAD, then the two CRC bytes
        shreg = Signal(BYTE * (TX_PAYLOAD_BYTES + 2))
        left = Signal(range(TX_PAYLOAD_BYTES + 3))     # of TYPE LEN PAYLOAD, this one included
        crc = Signal(hp.CRC_BITS)
        crc_next = Signal(hp.CRC_BITS)
        last = Signal()                                 # the current byte is CRC_LO
        byte = shreg[:BYTE]
        m.d.comb += crc_next.eq(crc16_next(crc, byte))
        special = (byte == hp.END) | (byte == hp.ESC)

        advance = Signal()        # the current byte has been sent (escaped or not)
        with m.If(advance):
            m.d.sync += shreg.eq(shreg >> BYTE)
            with m.If(left != 0):
                m.d.sync += [crc.eq(crc_next), left.eq(left - 1)]
                with m.If(left == 1):
                    m.d.sync += shreg.eq(Cat(crc_next[BYTE:], crc_next[:BYTE]))
            with m.Else():
                m.d.sync += last.eq(1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [shreg.eq(self.i.payload.as_value()), left.eq(self.i.payload.len + 2),
                                 crc.eq(hp.CRC_INIT), last.eq(0)]
                    m.next = "BYTE"
            with m.State("BYTE"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(Mux(special, hp.ESC, byte))]
                with m.If(self.o.ready):
                    with m.If(special):
                        m.next = "ESCAPED"
                    with m.Else():
                        m.d.comb += advance.eq(1)
                        with m.If(last):
                            m.next = "END"
            with m.State("ESCAPED"):
                m.d.comb += [self.o.valid.eq(1),
                             self.o.payload.eq(Mux(byte == hp.END, hp.ESC_END, hp.ESC_ESC))]
                with m.If(self.o.ready):
                    m.d.comb += advance.eq(1)
                    m.next = "BYTE"
                    with m.If(last):
                        m.next = "END"
            with m.State("END"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(hp.END)]
                with m.If(self.o.ready):
                    m.next = "IDLE"
        return m


class FrameReceiver(wiring.Component):
    """Receives frames from a byte stream into a buffer (``read`` port: byte ``n`` of the
    frame, ``TYPE`` at 0, ``LEN`` at 1, payload from 2, one cycle after ``addr``).

    When an END closes a non-empty frame, ``frame`` is presented: ``error`` is 0 for a good
    frame or an :class:`~hostlink_protocol.Error` code; the receiver takes no byte until
    ``frame.ready`` releases the buffer.
    """

    def __init__(self, max_payload: int = hp.DEFAULT_MAX_PAYLOAD):
        if not 2 <= max_payload <= 255:
            raise ValueError(f"max_payload {max_payload}: must be 2..255")
        self.max_payload = max_payload
        self.depth = max_payload + 4
        super().__init__({
            "i": In(stream.Signature(BYTE)),
            "frame": Out(stream.Signature(data.StructLayout(
                {"type": BYTE, "len": BYTE, "error": code_bits(hp.Error)}))),
            "addr": In(range(self.depth)),
            "data": Out(BYTE),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buf = memory.Memory(shape=BYTE, depth=self.depth, init=[])
        wr, rd = buf.write_port(), buf.read_port()
        m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]

        count = Signal(range(self.depth + 1))
        crc = Signal(hp.CRC_BITS, init=hp.CRC_INIT)
        escaped = Signal()
        bad_escape = Signal()
        overflow = Signal()
        type_ = Signal(BYTE)
        length = Signal(BYTE)
        byte = self.i.payload

        # what the frame is once its END arrives, registered in CHECK (the frame's checks are
        # a cycle of logic of their own, off the paths of the receiver and the link)
        error = Signal(code_bits(hp.Error))
        error_next = Signal(code_bits(hp.Error))
        allowed = Signal()
        shape_ok = Signal()          # the payload is a whole, non-zero number of records
        for t, (size, exact) in hp.HOST_TYPES.items():
            # the lengths a type allows, as a table indexed by LEN (no divider in the logic)
            ok = [n == size if exact or size == 0 else n != 0 and n % size == 0
                  for n in range(1 << BYTE)]
            with m.If(type_ == t):
                m.d.comb += [allowed.eq(1), shape_ok.eq(
                    Const(sum(1 << n for n, v in enumerate(ok) if v), 1 << BYTE).bit_select(
                        length, 1))]
        with m.If(overflow):
            m.d.comb += error_next.eq(hp.Error.OVERFLOW)
        with m.Elif(bad_escape):
            m.d.comb += error_next.eq(hp.Error.CRC)
        with m.Elif((count < 4) | (length != count - 4)):
            m.d.comb += error_next.eq(hp.Error.LENGTH)
        with m.Elif(crc != 0):
            m.d.comb += error_next.eq(hp.Error.CRC)
        with m.Elif(~allowed):
            m.d.comb += error_next.eq(hp.Error.TYPE)
        with m.Elif(~shape_ok):
            m.d.comb += error_next.eq(hp.Error.LENGTH)
        m.d.comb += [self.frame.payload.type.eq(type_), self.frame.payload.len.eq(length),
                     self.frame.payload.error.eq(error)]

        def restart():
            m.d.sync += [count.eq(0), crc.eq(hp.CRC_INIT), escaped.eq(0), bad_escape.eq(0),
                         overflow.eq(0)]

        # each byte is registered with what it is (END, ESC, an escape's second byte) and
        # handled in the next cycle: nothing of the RX FIFO's read path reaches the frame logic
        got = Signal(BYTE)
        is_end, is_esc, esc_end, esc_esc = Signal(), Signal(), Signal(), Signal()
        value = Signal(BYTE)
        m.d.comb += value.eq(Mux(escaped, Mux(esc_end, hp.END, hp.ESC), got))

        with m.FSM():
            with m.State("RECEIVE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [got.eq(byte), is_end.eq(byte == hp.END),
                                 is_esc.eq(byte == hp.ESC), esc_end.eq(byte == hp.ESC_END),
                                 esc_esc.eq(byte == hp.ESC_ESC)]
                    m.next = "BYTE"
            with m.State("BYTE"):
                m.next = "RECEIVE"
                with m.If(is_end):
                    with m.If((count != 0) | bad_escape | overflow | escaped):
                        m.d.sync += bad_escape.eq(bad_escape | escaped)
                        m.next = "CHECK"
                    with m.Else():
                        restart()
                with m.Elif(~escaped & is_esc):
                    m.d.sync += escaped.eq(1)
                with m.Else():
                    m.d.sync += escaped.eq(0)
                    with m.If(escaped & ~esc_end & ~esc_esc):
                        m.d.sync += bad_escape.eq(1)
                    with m.If(count == self.depth):
                        m.d.sync += overflow.eq(1)
                    with m.Else():
                        m.d.comb += [wr.addr.eq(count), wr.data.eq(value), wr.en.eq(1)]
                        m.d.sync += [count.eq(count + 1), crc.eq(crc16_next(crc, value))]
                        with m.If(count == 0):
                            m.d.sync += type_.eq(value)
                        with m.If(count == 1):
                            m.d.sync += length.eq(value)
            with m.State("CHECK"):
                m.d.sync += error.eq(error_next)
                m.next = "FRAME"
            with m.State("FRAME"):
                m.d.comb += self.frame.valid.eq(1)
                with m.If(self.frame.ready):
                    restart()
                    m.next = "RECEIVE"
        return m


class InputDecoder(wiring.Component):
    """The INPUT stream (:func:`hostlink_protocol.encode_inputs`; its reference decoder is
    :func:`hostlink_protocol.decode_inputs`) into the core's input words, one byte of ``i`` at
    a time. ``idle``: every byte taken so far has been fully turned into words (the decoder
    waits for the next byte). Its reset state is the stream's start (cursor at channel 0,
    before a header): :class:`HostLink` resets it on a MODE frame."""

    def __init__(self, n_inputs: int):
        self.n_inputs = n_inputs
        super().__init__({"i": In(stream.Signature(BYTE)), "o": Out(stream.Signature(INPUT_LAYOUT)),
                          "idle": Out(1)})

    def elaborate(self, platform):
        m = Module()
        n = self.n_inputs
        cursor = Signal(range(n + 1))
        op = Signal(2)
        left = Signal(range(hp.OP_COUNT + 1))      # bytes or steps left in the record
        skip = Signal(BYTE)                         # a LIST byte's skip still to make
        spike = Signal()                            # ... and whether a spike follows it
        bits = Signal(BYTE)                         # a BITMAP byte's bits still to send
        bit = Signal(range(BYTE))
        over = Signal(signed(max(len(cursor), BYTE) + 2))   # cursor + skip - n: >= 0 ends the step
        m.d.comb += over.eq(cursor + skip - n)
        byte = self.i.payload
        out = self.o.payload

        with m.FSM() as fsm:
            with m.State("HEADER"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [op.eq(byte[6:]), left.eq(byte[:6] + 1)]
                    with m.Switch(byte[6:]):
                        with m.Case(hp.OP_STEP):
                            m.next = "STEPS"
                        with m.Case(hp.OP_SAMPLE):
                            m.next = "SAMPLE"
                        with m.Default():
                            m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [left.eq(left - 1), skip.eq(byte), spike.eq(byte != hp.GAP_SKIP),
                                 bits.eq(byte), bit.eq(0)]
                    with m.If(op == hp.OP_LIST):
                        m.next = "ADVANCE"
                    with m.Else():
                        m.next = "BITS"
            with m.State("ADVANCE"):              # a LIST byte: skip, ending steps on the way
                with m.If(over >= 0):
                    m.d.comb += [self.o.valid.eq(1), out.kind.eq(InKind.STEP)]
                    with m.If(self.o.ready):
                        m.d.sync += [skip.eq(over), cursor.eq(0)]
                with m.Else():
                    m.d.sync += cursor.eq(cursor + skip)
                    with m.If(spike):
                        m.next = "SPIKE"
                    with m.Elif(left == 0):
                        m.next = "HEADER"
                    with m.Else():
                        m.next = "DATA"
            with m.State("SPIKE"):
                m.d.comb += [self.o.valid.eq(1), out.kind.eq(InKind.SPIKE), out.index.eq(cursor)]
                with m.If(self.o.ready):
                    m.d.sync += cursor.eq(cursor + 1)
                    with m.If(left == 0):
                        m.next = "HEADER"
                    with m.Else():
                        m.next = "DATA"
            with m.State("BITS"):                 # a BITMAP byte: channel cursor + bit
                m.d.comb += [self.o.valid.eq(bits[0]), out.kind.eq(InKind.SPIKE),
                             out.index.eq(cursor)]
                with m.If(~bits[0] | self.o.ready):
                    m.d.sync += [bits.eq(bits >> 1), bit.eq(bit + 1), cursor.eq(cursor + 1)]
                    with m.If(cursor == n - 1):   # the step's last channel: the step ends
                        m.next = "BITS_STEP"
                    with m.Elif(bit == BYTE - 1):
                        with m.If(left == 0):
                            m.next = "HEADER"
                        with m.Else():
                            m.next = "DATA"
            with m.State("BITS_STEP"):            # (the byte's later bits are ignored)
                m.d.comb += [self.o.valid.eq(1), out.kind.eq(InKind.STEP)]
                with m.If(self.o.ready):
                    m.d.sync += cursor.eq(0)
                    with m.If(left == 0):
                        m.next = "HEADER"
                    with m.Else():
                        m.next = "DATA"
            with m.State("STEPS"):
                m.d.comb += [self.o.valid.eq(1), out.kind.eq(InKind.STEP)]
                with m.If(self.o.ready):
                    m.d.sync += [cursor.eq(0), left.eq(left - 1)]
                    with m.If(left == 1):
                        m.next = "HEADER"
            with m.State("SAMPLE"):
                m.d.comb += [self.o.valid.eq(1), out.kind.eq(InKind.SAMPLE)]
                with m.If(self.o.ready):
                    m.d.sync += cursor.eq(0)
                    m.next = "HEADER"
        m.d.comb += self.idle.eq(fsm.ongoing("HEADER") | fsm.ongoing("DATA"))
        return m


class SampleStore(wiring.Component):
    """The on-board benchmark's sample store: ``depth`` bytes of the INPUT stream.

    ``append`` writes ``w_data`` at ``fill`` (the caller checks ``room``, the bytes free, a
    register: no subtraction in the caller's path), ``clear`` empties the store. ``start`` replays bytes ``0 .. fill - 1`` on ``o``, one per clock
    while ``o.ready``, ``replaying`` meanwhile; the store is empty after the replay. With
    ``depth`` 0 there is no memory: ``fill`` stays 0 and a replay ends at once."""

    def __init__(self, depth: int):
        self.depth = depth
        super().__init__({"w_data": In(BYTE), "append": In(1), "clear": In(1), "start": In(1),
                          "fill": Out(range(depth + 1)), "room": Out(range(depth + 1), init=depth),
                          "o": Out(stream.Signature(BYTE)),
                          "replaying": Out(1)})

    def elaborate(self, platform):
        m = Module()
        if self.depth == 0:
            return m
        m.submodules.memory = mem = memory.Memory(shape=BYTE, depth=self.depth, init=[])
        wr, rd = mem.write_port(), mem.read_port()
        index = Signal(range(self.depth + 1))      # the byte on ``o``
        loaded = Signal()                          # rd.data is the byte at ``index``
        more = Signal()                            # index != fill, a register (off o.valid's path)
        take = self.o.valid & self.o.ready
        # the read address runs one byte ahead when one is taken: a byte every clock
        m.d.comb += [rd.addr.eq(Mux(take, index + 1, index)), self.o.payload.eq(rd.data),
                     self.o.valid.eq(self.replaying & loaded & more),
                     wr.addr.eq(self.fill), wr.data.eq(self.w_data), wr.en.eq(self.append)]
        with m.If(self.append):
            m.d.sync += [self.fill.eq(self.fill + 1), self.room.eq(self.room - 1)]
        with m.If(self.clear):
            m.d.sync += [self.fill.eq(0), self.room.eq(self.depth)]
        with m.If(self.start):
            m.d.sync += [index.eq(0), loaded.eq(0), more.eq(self.fill != 0),
                         self.replaying.eq(1)]
        with m.Elif(self.replaying):
            m.d.sync += loaded.eq(1)
            with m.If(take):
                m.d.sync += [index.eq(index + 1), more.eq(index + 1 != self.fill)]
            with m.If(loaded & ~more):
                m.d.sync += [self.replaying.eq(0), self.fill.eq(0), self.room.eq(self.depth)]
        return m


class HostLink(wiring.Component):
    """Bytes in (``rx``) and out (``tx``) on one side, a core's streams on the other.

    Executes each good frame (CONFIG writes, INPUT bytes through an :class:`InputDecoder`
    for ``n_inputs`` channels, MODE, STATUS, STORE into a :class:`SampleStore` of
    ``store_bytes``, BENCH) and answers it (ACK / STATUS / BENCH reply), answers a bad one
    with ERROR; turns the core's output events into event frames (in
    :attr:`~hostlink_protocol.Mode.SCORES` only scores and sample ends; the others are taken
    from the core and dropped), through a buffer of ``event_words`` events (0: none).
    ``error`` (for an LED) is set by a bad frame and cleared by a STATUS request;
    ``bad_frames`` counts them (saturating).

    BENCH replays the store into the core in scores-only mode and counts the cycles the
    core is busy (``status.busy``) from its start until the replay has ended, every sample
    it started has ended and the core is idle, and the cycles the core's output waited for
    the link; its reply follows the last event frame.
    """

    def __init__(self, shape_id: int, score_bits: int, n_inputs: int,
                 max_payload: int = hp.DEFAULT_MAX_PAYLOAD, store_bytes: int = 0,
                 event_words: int = 0):
        if not 0 <= store_bytes < 1 << (8 * hp.BENCH.fields[2][1]):
            raise ValueError(f"store_bytes {store_bytes}: must fit the BENCH reply")
        if not 0 <= event_words < 1 << (8 * hp.BENCH.fields[3][1]):
            raise ValueError(f"event_words {event_words}: must fit the BENCH reply")
        self.shape_id = shape_id
        self.n_inputs = n_inputs
        self.max_payload = max_payload
        self.score_bits = score_bits
        self.store_bytes, self.event_words = store_bytes, event_words
        super().__init__({
            "rx": In(stream.Signature(BYTE)),
            "tx": Out(stream.Signature(BYTE)),
            "inputs": Out(stream.Signature(INPUT_LAYOUT)),
            "config": Out(stream.Signature(CONFIG_LAYOUT)),
            "outputs": In(stream.Signature(output_layout(score_bits))),
            "status": In(STATUS_LAYOUT),
            "error": Out(1),
            "bad_frames": Out(COUNTER_BITS),
        })

    def _event_frame(self, m: Module, out) -> Signal:
        """The frame that carries the output event ``out`` (type ``0x90 | kind``)."""
        event = Signal(TX_REQUEST)
        m.d.comb += event.type.eq(0x90 | out.kind)
        spike = record_bytes(m, hp.SPIKE, "spike", layer=out.layer, unit=out.unit)
        score = record_bytes(m, hp.SCORE, "score", unit=out.unit, value=out.value)
        # overlong = 1: the sample ran past max_steps (scores inexact)
        sample = record_bytes(m, hp.SAMPLE, "sample", overlong=out.value[0])
        with m.Switch(out.kind):
            with m.Case(OutKind.SPIKE):
                m.d.comb += [event.len.eq(hp.SPIKE.size), event.payload.eq(spike)]
            with m.Case(OutKind.SCORE):
                m.d.comb += [event.len.eq(hp.SCORE.size), event.payload.eq(score)]
            with m.Case(OutKind.SAMPLE):
                m.d.comb += [event.len.eq(hp.SAMPLE.size), event.payload.eq(sample)]
        return event

    def _events(self, m: Module, scores_only) -> stream.Interface:
        """The core's output events the MODE keeps (the others are taken and dropped),
        through the event buffer when there is one."""
        out = self.outputs.payload
        drop = scores_only & ((out.kind == OutKind.SPIKE) | (out.kind == OutKind.STEP))
        kept = stream.Signature(output_layout(self.score_bits)).create()
        if self.event_words:
            width = len(self.outputs.payload.as_value())
            m.submodules.events = buf = fifo.SyncFIFOBuffered(width=width,
                                                              depth=self.event_words)
            m.d.comb += [buf.w_data.eq(self.outputs.payload), buf.w_en.eq(self.outputs.valid & ~drop),
                         self.outputs.ready.eq(buf.w_rdy | drop),
                         kept.payload.eq(buf.r_data), kept.valid.eq(buf.r_rdy),
                         buf.r_en.eq(kept.ready)]
        else:
            m.d.comb += [kept.payload.eq(self.outputs.payload),
                         kept.valid.eq(self.outputs.valid & ~drop),
                         self.outputs.ready.eq(kept.ready | drop)]
        return kept

    def _transmit(self, m: Module, tx: FrameSender, scores_only):
        """The sender's requests: a reply (``reply`` while ``reply_valid``) first, else the
        next kept output event (which waits in the event buffer, then holds the core).
        Returns ``(reply, reply_valid, events)``."""
        reply = Signal(TX_REQUEST)
        reply_valid = Signal()
        events = self._events(m, scores_only)
        event = self._event_frame(m, events.payload)
        with m.If(reply_valid):
            m.d.comb += [tx.i.payload.eq(reply), tx.i.valid.eq(1)]
        with m.Else():
            m.d.comb += [tx.i.payload.eq(event), tx.i.valid.eq(events.valid),
                         events.ready.eq(tx.i.ready)]
        return reply, reply_valid, events

    @staticmethod
    def _store_states(m: Module, store: SampleStore, pos, length):
        """FSM states: a STORE frame's ``length`` payload bytes appended to the store (the
        receiver's ``addr`` is ``pos + 2``), then ACK."""
        with m.State("STORE_READ"):            # rx.addr = pos + 2 is being read
            m.next = "STORE"
        with m.State("STORE"):
            m.d.comb += store.append.eq(1)
            m.d.sync += pos.eq(pos + 1)
            with m.If(pos + 1 == length):
                m.next = "ACK"
            with m.Else():
                m.next = "STORE_READ"

    def _bench(self, m: Module, store: SampleStore, benching, decoder: InputDecoder):
        """The BENCH counters while ``benching``: core-busy cycles, cycles the core's output
        waited, samples started minus ended. Returns (reply payload, the replay is over)."""
        cycles = Signal(hp.BENCH_CYCLE_BITS)
        held = Signal(8 * hp.BENCH.fields[1][1])
        open_samples = Signal(range(self.store_bytes + 2))   # a sample takes a byte at least
        sample_in = (self.inputs.valid & self.inputs.ready
                     & (self.inputs.payload.kind == InKind.SAMPLE))
        sample_out = (self.outputs.valid & self.outputs.ready
                      & (self.outputs.payload.kind == OutKind.SAMPLE))
        # what is counted, registered (off the core's paths); the replay is over once the
        # core's last busy cycle has been counted
        busy, waiting = Signal(), Signal()
        m.d.sync += [busy.eq(self.status.busy), waiting.eq(self.outputs.valid & ~self.outputs.ready)]
        with m.If(store.start):
            m.d.sync += [cycles.eq(0), held.eq(0), open_samples.eq(0)]
        with m.Elif(benching):
            m.d.sync += [cycles.eq(cycles + busy),
                         open_samples.eq(open_samples + sample_in - sample_out)]
            count_saturating(m, held, waiting)
        over = (~store.replaying & ~store.start & decoder.idle & (open_samples == 0)
                & ~self.status.busy & ~busy)
        payload = record_bytes(m, hp.BENCH, "bench", cycles=cycles, held=held,
                               store_bytes=Const(self.store_bytes, 32),
                               event_words=Const(self.event_words, 16))
        return payload, over

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = rx = FrameReceiver(self.max_payload)
        m.submodules.sender = tx = FrameSender()
        m.submodules.store = store = SampleStore(self.store_bytes)
        decoder = InputDecoder(self.n_inputs)
        restart = Signal()                # a MODE or BENCH frame restarts the input stream
        m.submodules.decoder = ResetInserter(restart)(decoder)
        wiring.connect(m, decoder.o, wiring.flipped(self.inputs))
        scores_only = Signal()            # the MODE: drop spikes and step ends
        benching = Signal()               # the store is being replayed (BENCH)
        wiring.connect(m, wiring.flipped(self.rx), rx.i)
        wiring.connect(m, tx.o, wiring.flipped(self.tx))

        reply, reply_valid, events = self._transmit(m, tx, scores_only)
        reply_taken = reply_valid & tx.i.ready

        # ------------------------------------------------------------ executing frames
        frame = rx.frame.payload
        pos = Signal(BYTE)               # payload bytes consumed
        # CONFIG records are shifted in from the top, so a whole record ends at the top of rec
        rec = Signal(BYTE * hp.CONFIG_RECORD)
        rec_bytes = Signal(range(hp.CONFIG_RECORD + 1))
        m.d.comb += rx.addr.eq(pos + 2)
        record_fields(m, hp.CONFIG, rec, self.config.payload)
        m.d.comb += [decoder.i.payload.eq(Mux(benching, store.o.payload, rx.data)),
                     store.w_data.eq(rx.data)]
        bench_payload, bench_over = self._bench(m, store, benching, decoder)
        # a STORE frame's LEN against the room, registered: LEN is set bytes before the frame
        # is presented, the room changes only in states that pass through ACK and REPLY
        too_big = Signal()
        m.d.sync += too_big.eq(frame.len > store.room)

        bad = Signal(COUNTER_BITS)
        m.d.comb += self.bad_frames.eq(bad)
        status_payload = record_bytes(
            m, hp.STATUS, "status", version=Const(hp.VERSION), flags=Cat(self.status.busy, self.error),
            dropped_inputs=self.status.dropped_inputs, config_errors=self.status.config_errors,
            bad_frames=bad, max_payload=Const(self.max_payload), shape_id=Const(self.shape_id, 32))

        def send(type_, length, payload):
            m.d.sync += [reply.type.eq(type_), reply.len.eq(length), reply.payload.eq(payload)]
            m.next = "REPLY"

        with m.FSM():
            with m.State("WAIT"):
                with m.If(rx.frame.valid):
                    m.d.sync += [pos.eq(0), rec_bytes.eq(0)]
                    with m.If(frame.error != 0):
                        send(hp.Type.ERROR, 1, frame.error)
                        m.d.sync += self.error.eq(1)
                        count_saturating(m, bad, 1)
                    with m.Elif(frame.type == hp.Type.STATUS):
                        send(hp.Type.STATUS_REPLY, hp.STATUS_PAYLOAD, status_payload)
                        m.d.sync += self.error.eq(0)
                    with m.Elif(frame.type == hp.Type.INPUT):
                        m.next = "INPUT_READ"
                    with m.Elif(frame.type == hp.Type.STORE):
                        with m.If(too_big):
                            send(hp.Type.ERROR, 1, hp.Error.STORE_FULL)
                        with m.Else():
                            m.next = "STORE_READ"
                    with m.Elif(frame.type == hp.Type.BENCH):
                        m.d.comb += [store.start.eq(1), restart.eq(1)]
                        m.d.sync += [benching.eq(1), scores_only.eq(1)]
                        m.next = "BENCH"
                    with m.Else():
                        m.next = "READ"
            with m.State("READ"):              # rx.addr = pos + 2 is being read
                with m.If(frame.type == hp.Type.MODE):
                    m.next = "MODE"
                with m.Else():
                    m.next = "SHIFT"
            with m.State("SHIFT"):
                m.d.sync += [rec.eq(Cat(rec[BYTE:], rx.data)), pos.eq(pos + 1),
                             rec_bytes.eq(rec_bytes + 1)]
                with m.If(rec_bytes + 1 == hp.CONFIG_RECORD):
                    m.next = "PUSH"
                with m.Else():
                    m.next = "READ"
            with m.State("PUSH"):
                m.d.comb += self.config.valid.eq(1)
                with m.If(self.config.ready):
                    m.d.sync += rec_bytes.eq(0)
                    with m.If(pos == frame.len):
                        m.next = "ACK"
                    with m.Else():
                        m.next = "READ"
            with m.State("MODE"):              # restarts the decoder and empties the store
                m.d.sync += scores_only.eq(rx.data == hp.Mode.SCORES)
                m.d.comb += [restart.eq(1), store.clear.eq(1)]
                m.next = "ACK"
            with m.State("INPUT_READ"):        # rx.addr = pos + 2 is being read
                m.next = "INPUT"
            with m.State("INPUT"):
                m.d.comb += decoder.i.valid.eq(1)
                with m.If(decoder.i.ready):
                    m.d.sync += pos.eq(pos + 1)
                    with m.If(pos + 1 == frame.len):
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "INPUT_READ"
            with m.State("DRAIN"):             # the ACK once the last byte's words are out
                with m.If(decoder.idle):
                    m.next = "ACK"
            self._store_states(m, store, pos, frame.len)
            with m.State("BENCH"):             # the store into the decoder, a byte a clock
                m.d.comb += [decoder.i.valid.eq(store.o.valid), store.o.ready.eq(decoder.i.ready)]
                with m.If(bench_over & ~events.valid):    # every event frame handed on
                    m.d.sync += benching.eq(0)
                    send(hp.Type.BENCH_REPLY, hp.BENCH.size, bench_payload)
            with m.State("ACK"):
                send(hp.Type.ACK, 1, frame.type)
            with m.State("REPLY"):
                m.d.comb += reply_valid.eq(1)
                with m.If(reply_taken):
                    m.d.comb += rx.frame.ready.eq(1)
                    m.next = "WAIT"
        return m
