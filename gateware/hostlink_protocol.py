"""The host-link wire format: frames between a host and a board's UART (pure Python).

The one encoder/decoder of the link, used by the host runtime, the simulated board and the
tests; the gateware (:mod:`delayhw.gateware.hostlink`) takes its constants from here.
Byte layout (docs/boards.md has the full tables):

* A frame on the wire is ``SLIP(TYPE LEN PAYLOAD[LEN] CRC_HI CRC_LO) END``. SLIP (RFC 1055)
  escaping: a data byte ``END`` (0xC0) is sent as ``ESC ESC_END`` (0xDB 0xDC), a data byte
  ``ESC`` (0xDB) as ``ESC ESC_ESC`` (0xDB 0xDD). ``END`` never occurs inside a frame, so a
  receiver resynchronises at the next ``END`` whatever it lost; empty frames are ignored.
* ``CRC`` is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no
  final XOR) of ``TYPE LEN PAYLOAD``, sent high byte first: the CRC of the whole frame
  including its CRC bytes is then 0, which is what the receiver checks.
* Host to board: ``CONFIG`` (:data:`CONFIG` records, 10 bytes: configuration writes),
  ``INPUT`` (any number of bytes of the input stream, :func:`encode_inputs`: spikes as gaps
  or bitmaps, step and sample ends; one stream that frames cut anywhere), ``MODE`` (one
  byte: which output events the board sends, :class:`Mode`; also restarts the input
  stream's decoder), ``STATUS`` (empty: ask for the status). The board answers each with exactly one
  ``ACK`` (payload: the type it acknowledges) once the frame's contents have entered the core,
  a ``STATUS`` reply, or an ``ERROR`` (payload: an :class:`Error` code) for a frame it
  discarded (bad CRC, unknown type, longer than its buffer, inconsistent length). A
  discarded frame never reaches the core.
* Board to host, besides those replies, the core's output events as they happen, one frame
  each: ``SPIKE`` (:data:`SPIKE`: layer u8, unit u16), ``STEP`` (empty), ``SCORE``
  (:data:`SCORE`: unit u16, value i64), ``SAMPLE`` (:data:`SAMPLE`: the overlong flag u8);
  in :attr:`Mode.SCORES` only ``SCORE`` and ``SAMPLE`` (spikes and step ends are dropped on
  the board, so an active network's spikes do not bound the link).
* The on-board benchmark: ``STORE`` (1..LEN bytes of the INPUT stream appended to the
  board's sample store; ERROR :attr:`Error.STORE_FULL` and nothing stored when they do not
  fit; a MODE frame empties the store) and ``BENCH`` (empty: replays the store through the
  input decoder at one byte per clock in :attr:`Mode.SCORES`, then empties it; the SCORE and
  SAMPLE frames come as the samples end, then one ``BENCH`` reply, :data:`BENCH`, with the
  cycles the core was busy). A BENCH with an empty store replies at once (0 cycles): how
  the host reads the store's size.
* Version 3 (this one) added ``STORE``, ``BENCH``, the BENCH reply and ``STORE_FULL`` to
  version 2, whose frames it keeps unchanged; version 2 had replaced version 1's
  ``EVENTS`` records (2 bytes per spike and per step end) and ``SAMPLE_END`` frame with the
  ``INPUT`` stream, and added ``MODE``. The STATUS reply's layout is unchanged so the host
  reads any board's ``version`` and refuses one that differs (:func:`check_version`).

All multi-byte fields are little-endian (except the CRC). The host sends one frame and
waits for its reply before the next (stop and wait), so the board needs one frame buffer.

Every payload is a :class:`Record`: fields of whole bytes, derived from the core's one field
table (:mod:`delayhw.gateware.wire`) by rounding each field up to whole bytes (a config
write's fields, an input index, an output event's layer and unit, the status counters), so a
width changed there changes the records, their sizes and the board's decoder together. What
does not come from the table is the link's own: ``TYPE``/``LEN``/``version``/``max_payload``
(one byte each: ``LEN`` counts bytes of one frame), the status flags (one byte), the 32-bit
``shape_id`` (:func:`shape_id`), and a score's ``value``, sized for the widest score any
model can have (:data:`MAX_SCORE_BITS`) so the host reads any core's scores alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable, Iterator

import numpy as np

from delayhw.errors import DelayhwError
from delayhw.spec import LIMITS

from . import wire
from .shape import MAX_STEPS_LIMIT
from .wire import OutKind

VERSION = 3
BYTE_BITS = 8                #: bits of a link byte (also of ``TYPE`` and ``LEN``)
CRC_BITS = 16                #: width of the frame CRC
CRC_INIT = 0xFFFF            #: the CRC's initial value
END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def whole_bytes(bits: int) -> int:
    return -(-bits // 8)


@dataclass(frozen=True)
class Record:
    """A payload record: ``(name, bytes, signed)`` fields, little-endian, in order."""

    name: str
    fields: tuple[tuple[str, int, bool], ...]

    @staticmethod
    def of(word: wire.Word, names: tuple[str, ...] | None = None, name: str = "") -> "Record":
        """The leaf fields of ``word`` (or those of ``names``, in that order; nested names
        dotted as :meth:`wire.Word.flat` gives them), each rounded up to whole bytes."""
        leaves = {f["name"]: f for f in word.flat()}
        return Record(name or word.name, tuple((n, whole_bytes(leaves[n]["width"]), leaves[n]["signed"])
                                       for n in names or tuple(leaves)))

    @property
    def size(self) -> int:
        """Bytes of the record."""
        return sum(n for _, n, _ in self.fields)

    def offset(self, name: str) -> int:
        """Byte offset of field ``name``."""
        at = 0
        for n, size, _ in self.fields:
            if n == name:
                return at
            at += size
        raise KeyError(f"{self.name}: no field {name!r}")

    def pack(self, *values: int) -> bytes:
        """The record's bytes, one value per field in order (each must fit its bytes)."""
        if len(values) != len(self.fields):
            raise ValueError(f"{self.name}: {len(self.fields)} fields, {len(values)} values")
        return b"".join(int(v).to_bytes(n, "little", signed=s)
                        for v, (_, n, s) in zip(values, self.fields))

    def unpack(self, data: bytes) -> tuple[int, ...]:
        """The field values of one record (``data`` must be exactly :attr:`size` bytes)."""
        if len(data) != self.size:
            raise ValueError(f"{self.name}: {len(data)} bytes, expected {self.size}")
        out, at = [], 0
        for _, n, s in self.fields:
            out.append(int.from_bytes(data[at:at + n], "little", signed=s))
            at += n
        return tuple(out)


#: the widest score any model can have: ``v_bits`` up to 32 over up to ``MAX_STEPS_LIMIT`` steps
MAX_SCORE_BITS = LIMITS["v_bits"][1] + (MAX_STEPS_LIMIT - 1).bit_length()
#: one configuration write: the fields of :data:`wire.CONFIG` (col, row, field, layer, data)
CONFIG = Record.of(wire.CONFIG)
#: output events (:func:`wire.output`): a SPIKE's layer and unit; a SCORE's unit and value,
#: sign-extended to :data:`MAX_SCORE_BITS`; a SAMPLE's overlong flag
SPIKE = Record.of(wire.output(1), ("layer", "unit"), "spike")
SCORE = Record.of(wire.output(MAX_SCORE_BITS), ("unit", "value"), "score")
SAMPLE = Record("sample", (("overlong", 1, False),))
#: a STATUS reply: the core's counters (:data:`wire.STATUS`), the link's bad-frame counter (as
#: wide), and the link's own fields
STATUS = Record("status", (("version", 1, False), ("flags", 1, False)) + Record.of(
    wire.STATUS, ("dropped_inputs", "config_errors")).fields + (
    ("bad_frames", whole_bytes(wire.COUNTER_BITS), False), ("max_payload", 1, False),
    ("shape_id", 4, False)))

CONFIG_RECORD = CONFIG.size   #: bytes per configuration write (10)
DEFAULT_MAX_PAYLOAD = 250     #: payload bytes the board's frame buffer holds (a multiple of 10)
STATUS_PAYLOAD = STATUS.size  #: bytes of a STATUS reply's payload (13)
#: a BENCH reply: the core-busy clock cycles of the replay (48 bits, :data:`BENCH_CYCLE_BITS`),
#: the cycles the link held the core's output (saturating), and the board's sample store
#: (bytes) and output-event buffer (words)
BENCH_CYCLE_BITS = 48
BENCH = Record("bench", (("cycles", BENCH_CYCLE_BITS // 8, False), ("held", 4, False),
                         ("store_bytes", 4, False), ("event_words", 2, False)))


class Type(IntEnum):
    """Frame types. Host to board below 0x80, board to host from 0x80."""
    CONFIG = 0x01
    INPUT = 0x02
    STATUS = 0x04
    MODE = 0x05
    STORE = 0x06
    BENCH = 0x07
    ACK = 0x81
    ERROR = 0x82
    STATUS_REPLY = 0x83
    BENCH_REPLY = 0x84
    SPIKE = 0x90 | OutKind.SPIKE
    STEP = 0x90 | OutKind.STEP
    SCORE = 0x90 | OutKind.SCORE
    SAMPLE = 0x90 | OutKind.SAMPLE


class Error(IntEnum):
    """Codes of an ERROR reply."""
    CRC = 1         #: CRC mismatch or a broken escape sequence
    TYPE = 2        #: unknown frame type
    OVERFLOW = 3    #: more bytes than the board's frame buffer holds
    LENGTH = 4      #: LEN differs from the bytes received, or is not a whole number of records
    STORE_FULL = 5  #: a STORE frame's bytes do not fit the sample store (nothing was stored)


class Mode(IntEnum):
    """The ``MODE`` frame's byte: which output events the board sends."""
    EVENTS = 0      #: every event: spikes, step ends, scores, sample ends (the power-up mode)
    SCORES = 1      #: scores and sample ends only


#: host frame type -> ``(record bytes, exact)``: the payload is a non-empty whole number of
#: records (exactly one when ``exact``), or, for size 0 (STATUS), empty.
HOST_TYPES = {Type.CONFIG: (CONFIG_RECORD, False), Type.INPUT: (1, False),
              Type.STATUS: (0, True), Type.MODE: (1, True), Type.STORE: (1, False),
              Type.BENCH: (0, True)}


class LinkError(DelayhwError):
    """The link or the board broke the protocol (or the board reported an error)."""


def crc16(data: Iterable[int], crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value of b"123456789": 0x29B1)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return crc


def escape(data: bytes) -> bytes:
    return data.replace(bytes([ESC]), bytes([ESC, ESC_ESC])).replace(bytes([END]), bytes([ESC, ESC_END]))


def encode_frame(type_: int, payload: bytes = b"") -> bytes:
    """The bytes on the wire for one frame (escaped, CRC appended, END-terminated)."""
    if len(payload) > 255:
        raise LinkError(f"frame payload of {len(payload)} bytes: at most 255")
    body = bytes([int(type_), len(payload)]) + bytes(payload)
    crc = crc16(body)
    return escape(body + bytes([crc >> 8, crc & 0xFF])) + bytes([END])


@dataclass(frozen=True)
class Frame:
    """A received frame: ``type``/``payload``, or ``error`` (a reason) if it was malformed."""
    type: int
    payload: bytes
    error: str | None = None


class FrameDecoder:
    """Splits a byte stream into frames; :meth:`feed` returns the frames completed so far.
    Resynchronises at every END; a malformed frame comes back with ``error`` set."""

    def __init__(self):
        self._buf = bytearray()
        self._escaped = False
        self._bad_escape = False

    def feed(self, data: bytes) -> list[Frame]:
        frames = []
        for byte in data:
            if byte == END:
                if self._buf or self._bad_escape:
                    frames.append(self._finish(bytes(self._buf)))
                self._buf.clear()
                self._escaped = self._bad_escape = False
            elif self._escaped:
                self._escaped = False
                if byte == ESC_END:
                    self._buf.append(END)
                elif byte == ESC_ESC:
                    self._buf.append(ESC)
                else:
                    self._bad_escape = True
            elif byte == ESC:
                self._escaped = True
            else:
                self._buf.append(byte)
        return frames

    def _finish(self, body: bytes) -> Frame:
        type_ = body[0] if body else -1
        if self._bad_escape:
            return Frame(type_, b"", "broken escape sequence")
        if len(body) < 4:
            return Frame(type_, b"", f"{len(body)} bytes is too short for a frame")
        if body[1] != len(body) - 4:
            return Frame(type_, b"", f"LEN {body[1]} but {len(body) - 4} payload bytes")
        if crc16(body) != 0:
            return Frame(type_, b"", "CRC mismatch")
        return Frame(type_, body[2:-2])


# ----------------------------------------------------------------------------- host frames


def config_frames(words: Iterable[tuple[int, int]], max_payload: int = DEFAULT_MAX_PAYLOAD) -> Iterator[bytes]:
    """CONFIG frames carrying ``(address, data)`` writes (:func:`shape.config_words`)."""
    records = b"".join(config_record(a, d) for a, d in words)
    step = max_payload - max_payload % CONFIG_RECORD
    for start in range(0, len(records), step):
        yield encode_frame(Type.CONFIG, records[start:start + step])


def config_record(address: int, value: int) -> bytes:
    """One configuration write: the fields of the address (:data:`wire.CONFIG_ADDR`) and the
    data, each in whole bytes."""
    fields = {"data": value} | {f"addr.{n}": v for n, v in wire.CONFIG_ADDR.unpack(address).items()}
    return CONFIG.pack(*(fields[name] for name, _, _ in CONFIG.fields))


# The INPUT stream: one header byte per record, ``op`` in its top two bits, ``n - 1`` in the
# low six (n = 1..64). The board's decoder keeps a cursor ``c``, the channel of the current
# step it has reached (0..n_inputs; it starts at 0 and after a MODE frame):
#   LIST   n gap bytes: g < 255 skips g channels and spikes at the cursor (c += g, spike at c,
#          c += 1), 255 skips 255 channels; whenever the skip reaches the end of the step
#          (c + g >= n_inputs) the step ends (STEP) and the skip goes on from channel 0
#   BITMAP n bytes, 8 channels each from the cursor, bit b of a byte is channel c + b; the
#          bit of the last channel ends the step (STEP, c = 0; the byte's later bits are
#          ignored), so consecutive steps' bitmaps follow one another in one record
#   STEP   ends the current step n times (c = 0)
#   SAMPLE ends the sample (any low bits; the host sends 0xFF)
OP_LIST, OP_BITMAP, OP_STEP, OP_SAMPLE = 0, 1, 2, 3
OP_COUNT = 64             #: bytes or steps one record header covers at most
GAP_SKIP = 255            #: a LIST byte that only skips (no spike)
SAMPLE_BYTE = 0xFF        #: the SAMPLE record the host sends


def header(op: int, n: int) -> int:
    return op << 6 | (n - 1)


def _records(tokens: list[tuple[int, int | None]]) -> bytes:
    """Group ``(op, byte)`` tokens (byte None for STEP) into records of at most OP_COUNT."""
    out = bytearray()
    n = 0
    while n < len(tokens):
        op = tokens[n][0]
        run = 1
        while n + run < len(tokens) and run < OP_COUNT and tokens[n + run][0] == op:
            run += 1
        if op == OP_SAMPLE:
            out.append(SAMPLE_BYTE)
            run = 1
        else:
            out.append(header(op, run))
            if op != OP_STEP:
                out.extend(b for _, b in tokens[n:n + run])
        n += run
    return bytes(out)


def _gap_bytes(distance: int) -> list[int]:
    return [GAP_SKIP] * (distance // GAP_SKIP) + [distance % GAP_SKIP]


def encode_inputs(spikes: np.ndarray) -> bytes:
    """The INPUT stream of one sample ``(T, n_inputs)``: per step its spikes as gaps (a LIST)
    or as a bitmap, whichever takes fewer bytes for them from where the decoder's cursor is
    (record headers and the STEP records a bitmap needs first counted; a tie goes to the list), steps without spikes ended by the next gap or by STEP records
    (whichever is shorter), then the remaining step ends and SAMPLE."""
    spikes = np.asarray(spikes)
    steps, n = spikes.shape
    bitmap_bytes = whole_bytes(n)
    tokens: list[tuple[int, int | None]] = []
    s, c = 0, 0                  # the decoder's cursor: step s, channel c (0..n)

    def new_record(op):          # a header byte unless the last token continues that op
        return 0 if tokens and tokens[-1][0] == op else 1

    def step_ops(to_step):       # bytes of the STEP records from step s to step to_step
        return -(-(to_step - s) // OP_COUNT)

    for t in range(steps):
        channels = np.flatnonzero(spikes[t])
        if not len(channels):
            continue
        # the list: its first gap straight from (s, c), or after STEP records from (t, 0)
        first = int(channels[0] - c if t == s else (n - c) + (t - s - 1) * n + channels[0])
        direct = new_record(OP_LIST) + len(_gap_bytes(first))
        jump = step_ops(t) + 1 + len(_gap_bytes(int(channels[0]))) if t > s else direct + 1
        gaps = sum(len(_gap_bytes(int(g))) for g in np.diff(channels) - 1)
        list_cost = min(direct, jump) + gaps
        bitmap_cost = bitmap_bytes + (new_record(OP_BITMAP) if (s, c) == (t, 0)
                                      else step_ops(t) + 1)
        if bitmap_cost < list_cost:            # from (t, 0); it ends step t itself
            tokens += [(OP_STEP, None)] * (t - s)
            bits = np.zeros(8 * bitmap_bytes, dtype=np.uint8)
            bits[channels] = 1
            tokens += [(OP_BITMAP, int(b)) for b in np.packbits(bits, bitorder="little")]
            s, c = t + 1, 0
            continue
        if t > s and jump < direct:
            tokens += [(OP_STEP, None)] * (t - s)
            s, c, first = t, 0, int(channels[0])
        tokens += [(OP_LIST, b) for b in _gap_bytes(int(first))]
        tokens += [(OP_LIST, b) for g in np.diff(channels) - 1 for b in _gap_bytes(int(g))]
        s, c = t, int(channels[-1]) + 1
    tokens += [(OP_STEP, None)] * (steps - s) + [(OP_SAMPLE, None)]
    return _records(tokens)


def decode_inputs(data: bytes, n_inputs: int) -> list[tuple[int, int]]:
    """The core's input words ``(kind, index)`` (:class:`wire.InKind`) an INPUT stream
    stands for: the board's decoder, written plainly (a stream may end inside a record)."""
    from .wire import InKind
    words: list[tuple[int, int]] = []
    c, op, left = 0, None, 0
    for byte in data:
        if left == 0:
            op, count = byte >> 6, (byte & 0x3F) + 1
            if op == OP_STEP:
                words += [(InKind.STEP, 0)] * count
                c = 0
            elif op == OP_SAMPLE:
                words.append((InKind.SAMPLE, 0))
                c = 0
            else:
                left = count
            continue
        left -= 1
        if op == OP_LIST:
            skip = byte
            while c + skip >= n_inputs:
                words.append((InKind.STEP, 0))
                skip -= n_inputs - c
                c = 0
            c += skip
            if byte != GAP_SKIP:
                words.append((InKind.SPIKE, c))
                c += 1
        else:
            for bit in range(8):
                if byte >> bit & 1:
                    words.append((InKind.SPIKE, c))
                c += 1
                if c == n_inputs:
                    words.append((InKind.STEP, 0))
                    c = 0
                    break
    return words


def input_frames(spikes: np.ndarray, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Iterator[bytes]:
    """INPUT frames of samples ``(B, T, n_inputs)`` (or one sample ``(T, n_inputs)``): their
    streams one after the other, cut into frames of ``max_payload`` bytes."""
    spikes = np.asarray(spikes)
    samples = spikes[None] if spikes.ndim == 2 else spikes
    data = b"".join(encode_inputs(s) for s in samples)
    for start in range(0, len(data), max_payload):
        yield encode_frame(Type.INPUT, data[start:start + max_payload])


def mode_frame(mode: Mode) -> bytes:
    return encode_frame(Type.MODE, bytes([int(mode)]))


def status_request() -> bytes:
    return encode_frame(Type.STATUS)


def store_frames(data: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Iterator[bytes]:
    """STORE frames appending ``data`` (INPUT stream bytes) to the board's sample store."""
    for start in range(0, len(data), max_payload):
        yield encode_frame(Type.STORE, data[start:start + max_payload])


def bench_request() -> bytes:
    return encode_frame(Type.BENCH)


@dataclass(frozen=True)
class Bench:
    """A BENCH reply: ``cycles`` the core was busy during the replay, ``held`` cycles the
    link held the core's output (0: the core ran unhindered), the board's ``store_bytes``
    and ``event_words``."""
    cycles: int
    held: int
    store_bytes: int
    event_words: int

    def pack(self) -> bytes:
        return BENCH.pack(self.cycles, self.held, self.store_bytes, self.event_words)

    @staticmethod
    def unpack(payload: bytes) -> "Bench":
        if len(payload) != BENCH.size:
            raise LinkError(f"BENCH reply of {len(payload)} bytes, expected {BENCH.size}")
        return Bench(*BENCH.unpack(payload))


# ----------------------------------------------------------------------------- board frames


@dataclass(frozen=True)
class Status:
    """A STATUS reply."""
    version: int
    busy: bool
    error_seen: bool          #: a bad frame arrived since the last STATUS request
    dropped_inputs: int
    config_errors: int
    bad_frames: int
    max_payload: int
    shape_id: int             #: :func:`shape_id` of the core's shape

    def pack(self) -> bytes:
        flags = int(self.busy) | int(self.error_seen) << 1
        return STATUS.pack(self.version, flags, self.dropped_inputs, self.config_errors,
                           self.bad_frames, self.max_payload, self.shape_id)

    @staticmethod
    def unpack(payload: bytes) -> "Status":
        if len(payload) != STATUS_PAYLOAD:
            raise LinkError(f"STATUS reply of {len(payload)} bytes, expected {STATUS_PAYLOAD}")
        v, flags, dropped, cfg, bad, maxp, sid = STATUS.unpack(payload)
        return Status(v, bool(flags & 1), bool(flags & 2), dropped, cfg, bad, maxp, sid)


def check_version(version: int, port: str) -> None:
    """Refuse a board whose bitstream speaks another version of the link."""
    if version != VERSION:
        raise LinkError(f"{port}: the board's bitstream speaks host-link version {version}, "
                        f"this delayhw version {VERSION}: rebuild the bitstream with this "
                        f"delayhw (delayhw build)")


def shape_id(shape) -> int:
    """A 32-bit identifier of a core shape, reported by the board (first 8 hex digits of
    :attr:`CoreShape.key`)."""
    return int(shape.key[:8], 16)


def event_word(frame: Frame) -> tuple[int, int, int, int]:
    """``(kind, layer, unit, value)`` of an output-event frame, as
    :func:`protocol.unpack_output` gives for the core's output word."""
    p = frame.payload
    if frame.type == Type.SPIKE and len(p) == SPIKE.size:
        layer, unit = SPIKE.unpack(p)
        return OutKind.SPIKE, layer, unit, 0
    if frame.type == Type.SCORE and len(p) == SCORE.size:
        unit, value = SCORE.unpack(p)
        return OutKind.SCORE, 0, unit, value
    if frame.type == Type.STEP and not p:
        return OutKind.STEP, 0, 0, 0
    if frame.type == Type.SAMPLE and len(p) == SAMPLE.size and p[0] <= 1:
        return OutKind.SAMPLE, 0, 0, p[0]
    raise LinkError(f"frame type 0x{frame.type:02x} with a {len(p)}-byte payload is not an "
                    f"output event")


def event_frame(kind: int, layer: int = 0, unit: int = 0, value: int = 0) -> bytes:
    """The frame the board sends for one output event (the tests' reference encoder)."""
    if kind == OutKind.SPIKE:
        return encode_frame(Type.SPIKE, SPIKE.pack(layer, unit))
    if kind == OutKind.SCORE:
        return encode_frame(Type.SCORE, SCORE.pack(unit, value))
    if kind == OutKind.SAMPLE:
        return encode_frame(Type.SAMPLE, SAMPLE.pack(value))
    return encode_frame(Type.STEP)


def pack_output(kind: int, layer: int, unit: int, value: int, score_bits: int) -> int:
    """The inverse of :func:`protocol.unpack_output` (rebuilds the output word of a core whose
    scores are ``score_bits`` wide)."""
    return wire.output(score_bits).pack(kind=int(kind), layer=layer, unit=unit, value=value)


__all__ = ["VERSION", "Record", "CONFIG", "SPIKE", "SCORE", "SAMPLE", "STATUS", "Type", "Mode",
           "Error", "Frame", "FrameDecoder", "Status", "LinkError", "crc16", "encode_frame",
           "config_frames", "config_record", "encode_inputs", "decode_inputs", "input_frames",
           "mode_frame", "status_request", "store_frames", "bench_request", "Bench", "BENCH", "check_version", "shape_id", "event_word",
           "event_frame", "pack_output"]
