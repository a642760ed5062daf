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
* Host to board: ``CONFIG`` (10-byte configuration writes), ``EVENTS`` (16-bit input words:
  a channel index, or ``STEP_WORD`` 0xFFFF ending a step), ``SAMPLE_END`` (empty: end of the
  sample), ``STATUS`` (empty: ask for the status). The board answers each with exactly one
  ``ACK`` (payload: the type it acknowledges) once the frame's contents have entered the core,
  a ``STATUS`` reply, or an ``ERROR`` (payload: an :class:`Error` code) for a frame it
  discarded (bad CRC, unknown type, longer than its buffer, inconsistent length). A
  discarded frame never reaches the core.
* Board to host, besides those replies, the core's output events as they happen, one frame
  each: ``SPIKE`` (layer u8, unit u16), ``STEP`` (empty), ``SCORE`` (unit u16, value i64),
  ``SAMPLE`` (empty).

All multi-byte fields are little-endian (except the CRC). The host sends one frame and
waits for its reply before the next (stop and wait), so the board needs one frame buffer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable, Iterator

import numpy as np

from delayhw.errors import DelayhwError

from . import wire
from .shape import OutKind

VERSION = 1
END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
STEP_WORD = 0xFFFF            #: in an EVENTS payload: end of the current step
CONFIG_RECORD = 10            #: bytes per configuration write: col u16, row u16, field u8, layer u8, data i32
EVENT_RECORD = 2              #: bytes per input word
DEFAULT_MAX_PAYLOAD = 250     #: payload bytes the board's frame buffer holds (multiple of 10 and 2)
STATUS_PAYLOAD = 13           #: bytes of a STATUS reply's payload


class Type(IntEnum):
    """Frame types. Host to board below 0x80, board to host from 0x80."""
    CONFIG = 0x01
    EVENTS = 0x02
    SAMPLE_END = 0x03
    STATUS = 0x04
    ACK = 0x81
    ERROR = 0x82
    STATUS_REPLY = 0x83
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


#: host frame type -> (record size, whether the payload may be empty). Records must fill the
#: payload exactly; SAMPLE_END and STATUS carry no payload.
HOST_TYPES = {Type.CONFIG: CONFIG_RECORD, Type.EVENTS: EVENT_RECORD, Type.SAMPLE_END: 0,
              Type.STATUS: 0}


class LinkError(DelayhwError):
    """The link or the board broke the protocol (or the board reported an error)."""


def crc16(data: Iterable[int], crc: int = 0xFFFF) -> int:
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
    f = wire.CONFIG_ADDR.unpack(address)
    return struct.pack("<HHBBi", f["col"], f["row"], f["field"], f["layer"], value)


def sample_frames(spikes: np.ndarray, max_payload: int = DEFAULT_MAX_PAYLOAD) -> Iterator[bytes]:
    """EVENTS frames of one sample ``(T, n_inputs)`` (per step the active channels in
    ascending order, then STEP_WORD), then SAMPLE_END."""
    words = []
    for row in np.asarray(spikes):
        words.extend(int(i) for i in np.flatnonzero(row))
        words.append(STEP_WORD)
    data = struct.pack(f"<{len(words)}H", *words)
    step = max_payload - max_payload % EVENT_RECORD
    for start in range(0, len(data), step):
        yield encode_frame(Type.EVENTS, data[start:start + step])
    yield encode_frame(Type.SAMPLE_END)


def status_request() -> bytes:
    return encode_frame(Type.STATUS)


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
        return struct.pack("<BBHHHBI", self.version, flags, self.dropped_inputs,
                           self.config_errors, self.bad_frames, self.max_payload, self.shape_id)

    @staticmethod
    def unpack(payload: bytes) -> "Status":
        if len(payload) != STATUS_PAYLOAD:
            raise LinkError(f"STATUS reply of {len(payload)} bytes, expected {STATUS_PAYLOAD}")
        v, flags, dropped, cfg, bad, maxp, sid = struct.unpack("<BBHHHBI", payload)
        return Status(v, bool(flags & 1), bool(flags & 2), dropped, cfg, bad, maxp, sid)


def shape_id(shape) -> int:
    """A 32-bit identifier of a core shape, reported by the board (first 8 hex digits of
    :attr:`CoreShape.key`)."""
    return int(shape.key[:8], 16)


def event_word(frame: Frame) -> tuple[int, int, int, int]:
    """``(kind, layer, unit, value)`` of an output-event frame, as
    :func:`protocol.unpack_output` gives for the core's output word."""
    p = frame.payload
    try:
        if frame.type == Type.SPIKE:
            layer, unit = struct.unpack("<BH", p)
            return OutKind.SPIKE, layer, unit, 0
        if frame.type == Type.SCORE:
            unit, value = struct.unpack("<Hq", p)
            return OutKind.SCORE, 0, unit, value
        if frame.type == Type.STEP and not p:
            return OutKind.STEP, 0, 0, 0
        if frame.type == Type.SAMPLE and len(p) == 1 and p[0] <= 1:
            return OutKind.SAMPLE, 0, 0, p[0]
    except struct.error:
        pass
    raise LinkError(f"frame type 0x{frame.type:02x} with a {len(p)}-byte payload is not an "
                    f"output event")


def event_frame(kind: int, layer: int = 0, unit: int = 0, value: int = 0) -> bytes:
    """The frame the board sends for one output event (the tests' reference encoder)."""
    if kind == OutKind.SPIKE:
        return encode_frame(Type.SPIKE, struct.pack("<BH", layer, unit))
    if kind == OutKind.SCORE:
        return encode_frame(Type.SCORE, struct.pack("<Hq", unit, value))
    if kind == OutKind.SAMPLE:
        return encode_frame(Type.SAMPLE, bytes([value]))
    return encode_frame(Type.STEP)


def pack_output(kind: int, layer: int, unit: int, value: int, score_bits: int) -> int:
    """The inverse of :func:`protocol.unpack_output` (rebuilds the output word of a core whose
    scores are ``score_bits`` wide)."""
    from .shape import INDEX_BITS, LAYER_BITS
    return (int(kind) | layer << 2 | unit << (2 + LAYER_BITS)
            | (value & ((1 << score_bits) - 1)) << (2 + LAYER_BITS + INDEX_BITS))


__all__ = ["VERSION", "Type", "Error", "Frame", "FrameDecoder", "Status", "LinkError", "crc16",
           "encode_frame", "config_frames", "config_record", "sample_frames", "status_request",
           "shape_id", "event_word", "event_frame", "pack_output"]
