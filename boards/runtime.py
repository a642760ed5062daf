"""The host runtime: runs input samples on a board (or the simulated board) through the UART
host link and gives back the same :class:`~delayhw.formats.Result` as the golden model.

The host sends one frame at a time and waits for its ACK (the board has one frame buffer),
collecting the output-event frames the board streams meanwhile. A frame the board rejects
(ERROR reply) was discarded whole, so it is sent again (up to :data:`RETRIES` times).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from delayhw.errors import DelayhwError
from delayhw.formats import Result
from delayhw.gateware import hostlink_protocol as hp
from delayhw.gateware import protocol
from delayhw.gateware.shape import CoreShape, config_words
from delayhw.gateware.wire import COUNTER_BITS, OutKind
from delayhw.spec import Model

RETRIES = 3


class SerialPort:
    """A pyserial port with the two calls the runtime needs."""

    def __init__(self, name: str, baud: int):
        try:
            import serial
        except ImportError:
            raise DelayhwError("--port: pyserial is not installed (pip install 'delayhw[boards]')") from None
        try:
            self._serial = serial.Serial(name, baud, timeout=0)
        except (serial.SerialException, OSError) as exc:
            raise DelayhwError(f"--port {name}: cannot open it ({exc})") from None
        self.name = name

    def write(self, data: bytes) -> None:
        self._serial.write(data)

    def read(self, timeout: float) -> bytes:
        self._serial.timeout = timeout
        data = self._serial.read(1)
        return data + self._serial.read(self._serial.in_waiting) if data else data

    def close(self) -> None:
        self._serial.close()


@contextmanager
def open_port(port: str, shape: CoreShape, baud: int = 3_000_000,
              timeout: float = 10.0) -> Iterator[object]:
    """A serial port by name, or ``sim:verilator`` / ``sim:icarus`` (the board top of
    ``shape`` in simulation, :mod:`delayhw.sim.board`)."""
    if port.startswith("sim:"):
        from delayhw.sim.board import SimPort
        sim = port[4:]
        handle = SimPort(shape, sim)
    else:
        handle = SerialPort(port, baud)
    try:
        yield handle
    except Exception:              # a failure: a simulated board's files are kept for it
        handle.close(**({"keep": True} if port.startswith("sim:") else {}))
        raise
    except BaseException:          # interrupted (SIGINT, SIGTERM): stop, keep nothing
        handle.close(**({"abort": True} if port.startswith("sim:") else {}))
        raise
    handle.close()


@dataclass
class BoardRun:
    result: Result
    seconds: float           #: sending the samples until the last result arrived
    config_seconds: float    #: loading the configuration (0 with load=False)
    bytes_sent: int
    bytes_received: int
    status: hp.Status


class LinkClient:
    """Frames over a port: :meth:`send` one host frame and wait for its reply, collecting
    output-event words as they arrive."""

    def __init__(self, port, timeout: float, score_bits: int):
        self.port, self.timeout, self.score_bits = port, timeout, score_bits
        self.decoder = hp.FrameDecoder()
        self.words: list[int] = []
        self.samples_done = 0
        self.sent = self.received = 0
        self.errors: list[hp.Error] = []

    def _write(self, data: bytes) -> None:
        self.port.write(data)
        self.sent += len(data)

    def _poll(self, timeout: float) -> list[hp.Frame]:
        data = self.port.read(timeout)
        self.received += len(data)
        replies = []
        for frame in self.decoder.feed(data):
            if frame.error:
                raise hp.LinkError(f"{self.port.name}: a corrupted frame from the board "
                                   f"({frame.error}); its events are lost, run again")
            if frame.type >= hp.Type.SPIKE:
                event = hp.event_word(frame)
                self.words.append(hp.pack_output(*event, self.score_bits))
                self.samples_done += event[0] == OutKind.SAMPLE
            else:
                replies.append(frame)
        return replies

    def send(self, frame: bytes) -> hp.Frame:
        """Send ``frame`` and return the board's reply (ACK or STATUS); resend on ERROR."""
        kind = hp.FrameDecoder().feed(frame)[0].type
        for _ in range(RETRIES + 1):
            self._write(frame)
            reply = self._wait_reply()
            if reply.type == hp.Type.ERROR:
                self.errors.append(hp.Error(reply.payload[0]))
                continue
            if reply.type == hp.Type.ACK and reply.payload == bytes([kind]):
                return reply
            if reply.type == hp.Type.STATUS_REPLY and kind == hp.Type.STATUS:
                return reply
            if reply.type == hp.Type.BENCH_REPLY and kind == hp.Type.BENCH:
                return reply
            raise hp.LinkError(f"{self.port.name}: reply 0x{reply.type:02x} "
                               f"{reply.payload.hex()} to a frame of type 0x{kind:02x}")
        raise hp.LinkError(f"{self.port.name}: the board rejected a frame {RETRIES + 1} times "
                           f"({', '.join(e.name for e in self.errors[-RETRIES - 1:])})")

    def _wait_reply(self) -> hp.Frame:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            replies = self._poll(min(0.05, self.timeout))
            if len(replies) > 1:
                raise hp.LinkError(f"{self.port.name}: {len(replies)} replies to one frame")
            if replies:
                return replies[0]
        raise hp.LinkError(f"{self.port.name}: no reply from the board within {self.timeout} s "
                           f"(is it the delayhw bitstream, at this baud rate? --board NAME "
                           f"or --baud give the rate `delayhw build` reported)")

    def status(self) -> hp.Status:
        """The board's STATUS (its link version checked first: a bitstream of another version
        is refused by name, whatever the rest of its reply)."""
        payload = self.send(hp.status_request()).payload
        hp.check_version(payload[0] if payload else -1, self.port.name)
        return hp.Status.unpack(payload)

    def wait_samples(self, n: int, on_sample: Callable[[int], None]) -> None:
        last, deadline = self.samples_done, time.monotonic() + self.timeout
        while self.samples_done < n:
            if time.monotonic() > deadline:
                raise hp.LinkError(f"{self.port.name}: {self.samples_done} of {n} samples "
                                   f"finished; nothing more within {self.timeout} s")
            self._poll(0.05)
            if self.samples_done != last:
                last, deadline = self.samples_done, time.monotonic() + self.timeout
                on_sample(last)


def _connect(port, model: Model, shape: CoreShape, timeout: float, load: bool):
    """A :class:`LinkClient` on ``port`` to a board of this link version and of ``shape``
    (else refused), the model's configuration sent when ``load``. Returns ``(client, status,
    start time)``."""
    client = LinkClient(port, timeout, shape.score_bits)
    client._write(bytes([hp.END]))                     # end whatever partial frame is there
    status = client.status()
    if status.shape_id != hp.shape_id(shape):
        raise DelayhwError(f"{port.name}: the board's core has another shape (id "
                           f"{status.shape_id:08x}, this model {hp.shape_id(shape):08x}): build "
                           f"the bitstream for this model (and --scheme/--lanes)")
    t0 = time.perf_counter()
    if load:
        for frame in hp.config_frames(config_words(model), status.max_payload):
            client.send(frame)
    return client, status, t0


def _final_status(client: LinkClient, status: hp.Status) -> hp.Status:
    """The board's STATUS after a run; refuses a run in which the core counted bad
    configuration writes or dropped inputs."""
    final = client.status()
    wrap = (1 << COUNTER_BITS) - 1            # counter differences modulo their width
    bad_config = (final.config_errors - status.config_errors) & wrap
    dropped = (final.dropped_inputs - status.dropped_inputs) & wrap
    if bad_config or dropped:
        raise DelayhwError(f"{client.port.name}: the board counted {bad_config} bad "
                           f"configuration writes and {dropped} dropped inputs during this run")
    return final


def run_samples(port, model: Model, shape: CoreShape, spikes: np.ndarray, *, load: bool = True,
                timeout: float = 10.0, on_sample: Callable[[int], None] = lambda n: None,
                scores_only: bool = False) -> BoardRun:
    """Run ``spikes`` ``(B, T, n_inputs)`` on the board behind ``port``; ``load`` sends the
    model's configuration first; ``scores_only`` asks the board for scores and sample ends
    only (the result has no spikes). Refuses a board of another link version or whose core
    has another shape."""
    client, status, t0 = _connect(port, model, shape, timeout, load)
    client.send(hp.mode_frame(hp.Mode.SCORES if scores_only else hp.Mode.EVENTS))
    t1 = time.perf_counter()
    for frame in hp.input_frames(spikes, status.max_payload):
        client.send(frame)
        if client.samples_done:
            on_sample(client.samples_done)
    client.wait_samples(len(spikes), on_sample)
    seconds = time.perf_counter() - t1
    final = _final_status(client, status)
    if scores_only:
        result = protocol.decode_scores(client.words, shape, len(spikes))
    else:
        result = protocol.decode_outputs(client.words, shape, *spikes.shape[:2])
    return BoardRun(result, seconds, t1 - t0, client.sent, client.received, final)


@dataclass
class BenchRun:
    run: BoardRun
    cycles: int              #: core-busy clock cycles, summed over the chunks
    held: int                #: cycles the core's output waited for the link (0: unhindered)
    chunks: int              #: store-sized runs the batch took
    store_bytes: int         #: the board's sample store


def bench_chunks(streams: list[bytes], store_bytes: int, samples_max: int) -> list[int]:
    """How many of ``streams`` (one sample's INPUT stream each) go in each store load:
    greedily, at most ``store_bytes`` bytes and ``samples_max`` samples a load."""
    sizes, size, count = [], 0, 0
    for n, data in enumerate(streams):
        if len(data) > store_bytes:
            raise DelayhwError(f"sample {n}: its input stream is {len(data):,} bytes, more than "
                               f"the board's {store_bytes:,}-byte sample store")
        if count and (size + len(data) > store_bytes or count == samples_max):
            sizes.append(count)
            size, count = 0, 0
        size, count = size + len(data), count + 1
    return sizes + [count] if count else sizes


def bench_samples(port, model: Model, shape: CoreShape, spikes: np.ndarray, *,
                  load: bool = True, timeout: float = 10.0,
                  on_sample: Callable[[int], None] = lambda n: None) -> BenchRun:
    """The on-board benchmark: ``spikes`` ``(B, T, n_inputs)`` stored in the board's sample
    store (STORE frames) and replayed there (BENCH) at one byte per clock, scores only, in
    as many store-sized chunks as it takes (each at most as many samples as the board's
    event buffer holds the scores of, so the core's output never waits for the UART).
    Refuses a board of another link version or shape, or one without a store."""
    client, status, t0 = _connect(port, model, shape, timeout, load)
    client.send(hp.mode_frame(hp.Mode.SCORES))          # also empties the store
    info = hp.Bench.unpack(client.send(hp.bench_request()).payload)
    if info.store_bytes == 0:
        raise DelayhwError(f"{port.name}: the board's bitstream has no sample store (its "
                           f"block RAM is full): --bench cannot run on it")
    streams = [hp.encode_inputs(s) for s in spikes]
    per_sample = shape.layers[-1].size + 1              # SCORE words and the SAMPLE marker
    chunks = bench_chunks(streams, info.store_bytes, max(1, info.event_words // per_sample))
    t1 = time.perf_counter()
    cycles = held = done = 0
    for count in chunks:
        for frame in hp.store_frames(b"".join(streams[done:done + count]), status.max_payload):
            client.send(frame)
        reply = hp.Bench.unpack(client.send(hp.bench_request()).payload)
        cycles, held, done = cycles + reply.cycles, held + reply.held, done + count
        if client.samples_done != done:
            raise hp.LinkError(f"{port.name}: {client.samples_done} of {done} samples ended "
                               f"before the BENCH reply")
        on_sample(done)
    seconds = time.perf_counter() - t1
    final = _final_status(client, status)
    result = protocol.decode_scores(client.words, shape, len(spikes))
    run = BoardRun(result, seconds, t1 - t0, client.sent, client.received, final)
    return BenchRun(run, cycles, held, len(chunks), info.store_bytes)
