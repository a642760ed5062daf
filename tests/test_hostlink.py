"""The host link: the Python encoder/decoder against the CRC/SLIP rules, the UART and the
link controller in amaranth.sim against that encoder/decoder, with back-pressure and bad
frames, and the whole link + core against the golden model."""

import struct

import numpy as np
import pytest
from amaranth import Module
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from delayhw import golden, netgen
from delayhw.gateware import hostlink_protocol as hp
from delayhw.gateware import protocol
from delayhw.gateware.core import Core
from delayhw.gateware.hostlink import HostLink, crc16_next
from delayhw.gateware.shape import SCHEMES, CoreShape, config_words
from delayhw.gateware.uart import UARTRX, UARTTX
from delayhw.gateware.wire import InKind, config_address
from delayhw.sim.clock import CLOCK_PERIOD_S

# ----------------------------------------------------------------------------- protocol


def test_crc_is_ccitt_false():
    # the catalogued check value of CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740)
    assert hp.crc16(b"123456789") == 0x29B1
    assert hp.crc16(b"") == 0xFFFF


@given(st.binary(max_size=255), st.integers(0, 255))
def test_frame_round_trip_and_zero_residue(payload, type_):
    wire = hp.encode_frame(type_, payload)
    assert wire.count(hp.END) == 1 and wire[-1] == hp.END      # END only terminates
    frames = hp.FrameDecoder().feed(wire)
    assert frames == [hp.Frame(type_, payload)]
    unescaped = bytes([type_, len(payload)]) + payload
    crc = hp.crc16(unescaped)
    assert hp.crc16(unescaped + bytes([crc >> 8, crc & 0xFF])) == 0


@given(st.binary(min_size=1, max_size=40), st.binary(max_size=60))
def test_decoder_resynchronises_after_garbage(garbage, payload):
    frames = hp.FrameDecoder().feed(garbage + bytes([hp.END]) + hp.encode_frame(0x02, payload))
    assert frames[-1] == hp.Frame(0x02, payload)
    assert all(f.error for f in frames[:-1])


def test_decoder_names_what_is_wrong():
    wire = bytearray(hp.encode_frame(0x02, b"\x01\x02"))
    wire[2] ^= 0x40
    assert hp.FrameDecoder().feed(bytes(wire))[0].error == "CRC mismatch"
    assert "LEN" in hp.FrameDecoder().feed(bytes([2, 5, 1, 2, 3, hp.END]))[0].error
    assert "escape" in hp.FrameDecoder().feed(bytes([2, hp.ESC, 1, hp.END]))[0].error


def test_config_record_carries_the_address_fields():
    addr = config_address(3, 5, 0x1234, 0xBEEF)
    assert hp.config_record(addr, -7) == struct.pack("<HHBBi", 0xBEEF, 0x1234, 5, 3, -7)


def test_every_payload_record_is_its_wire_fields_in_whole_bytes():
    """The link's byte layouts come from the core's one field table (gateware/wire.py): each
    field of a record is that field of the table rounded up to whole bytes, same sign; the
    sizes are the documented ones (docs/boards.md)."""
    from delayhw.gateware import wire
    from delayhw.gateware.hostlink import TX_PAYLOAD_BYTES
    pairs = [(hp.CONFIG, wire.CONFIG), (hp.SPIKE, wire.output(1)),
             (hp.SCORE, wire.output(hp.MAX_SCORE_BITS))]
    for record, word in pairs:
        table = {f["name"]: f for f in word.flat()}
        for name, size, signed in record.fields:
            assert (size, signed) == (-(-table[name]["width"] // 8), table[name]["signed"])
    assert [n for n, _, _ in hp.CONFIG.fields] == [f["name"] for f in wire.CONFIG.flat()]
    status = {n: (size, signed) for n, size, signed in hp.STATUS.fields}
    for f in wire.STATUS.flat():
        if f["name"] != "busy":                        # busy travels in the flags byte
            assert status[f["name"]] == (-(-f["width"] // 8), False)
    assert status["bad_frames"] == status["dropped_inputs"]
    assert (hp.CONFIG_RECORD, hp.STATUS_PAYLOAD, hp.SPIKE.size,
            hp.SCORE.size) == (10, 13, 3, 10)
    assert max(r.size for r in (hp.STATUS, hp.SCORE, hp.SPIKE, hp.SAMPLE)) <= TX_PAYLOAD_BYTES


def test_a_field_widened_in_the_table_widens_its_record_consistently():
    """Record.of derives a record from any table: wider fields take more bytes, offsets
    follow, values of the full new width round-trip, and one too wide is refused."""
    from delayhw.gateware.wire import Bits, Word
    addr = Word("config_addr", (("col", Bits(24)), ("row", Bits(17)), ("field", Bits(9)),
                                ("layer", Bits(8))))
    record = hp.Record.of(Word("config", (("addr", addr), ("data", Bits(40, signed=True)))))
    assert [(n, size) for n, size, _ in record.fields] == [
        ("addr.col", 3), ("addr.row", 3), ("addr.field", 2), ("addr.layer", 1), ("data", 5)]
    assert record.size == 14 and record.offset("addr.layer") == 8 and record.offset("data") == 9
    values = ((1 << 24) - 1, (1 << 17) - 1, 511, 255, -(1 << 39))
    assert record.unpack(record.pack(*values)) == values
    with pytest.raises(OverflowError):
        record.pack(1 << 24, 0, 0, 0, 0)


@pytest.mark.parametrize("score_bits", [4, 17, 33, 48, hp.MAX_SCORE_BITS])
def test_every_score_width_a_model_can_have_crosses_the_link_exactly(score_bits):
    """A SCORE frame holds the widest score a core can have (v_bits 32 over MAX_STEPS_LIMIT
    steps), so every core's extreme scores come back as the output word the core sent."""
    from delayhw.gateware.shape import MAX_STEPS_LIMIT
    from delayhw.spec import LIMITS, LayerShape
    widest = CoreShape(1, (LayerShape("readout", 1, 1, 2, LIMITS["v_bits"][1], 1, 0, False,
                                      False),), max_steps=MAX_STEPS_LIMIT)
    assert widest.score_bits == hp.MAX_SCORE_BITS <= 8 * dict(
        (n, size) for n, size, _ in hp.SCORE.fields)["value"]
    for value in (-(1 << (score_bits - 1)), (1 << (score_bits - 1)) - 1, -1, 0):
        frame = hp.FrameDecoder().feed(hp.event_frame(2, 0, 65535, value))[0]
        word = hp.pack_output(*hp.event_word(frame), score_bits)
        assert protocol.unpack_output(word, score_bits) == (2, 0, 65535, value)


def test_status_round_trip():
    s = hp.Status(1, True, False, 3, 4, 5, 250, 0xDEADBEEF)
    assert hp.Status.unpack(s.pack()) == s


def test_bench_reply_layout_and_round_trip():
    """A BENCH reply is ``cycles u48, held u32, store_bytes u32, event_words u16``,
    little-endian (docs/boards.md), fits a reply frame, and round-trips at its extremes."""
    from delayhw.gateware.hostlink import TX_PAYLOAD_BYTES
    top = hp.Bench((1 << 48) - 1, (1 << 32) - 1, (1 << 32) - 1, (1 << 16) - 1)
    for b in (hp.Bench(0, 0, 0, 0), hp.Bench(123456789012, 7, 4096, 256), top):
        packed = b.pack()
        assert packed == b.cycles.to_bytes(6, "little") + struct.pack(
            "<IIH", b.held, b.store_bytes, b.event_words)
        assert hp.Bench.unpack(packed) == b
    assert hp.BENCH.size == 16 <= TX_PAYLOAD_BYTES
    with pytest.raises(hp.LinkError, match="BENCH reply of 15 bytes"):
        hp.Bench.unpack(bytes(15))
    with pytest.raises(OverflowError):
        hp.Bench(1 << 48, 0, 0, 0).pack()


def test_gateware_bench_record_bytes_equal_the_host_encoder():
    """The board's BENCH payload (record_bytes of hp.BENCH) is the host's Bench.pack."""
    from amaranth import Signal
    from delayhw.gateware.hostlink import record_bytes
    m = Module()
    cycles, held = Signal(48), Signal(32)
    value = record_bytes(m, hp.BENCH, "bench", cycles=cycles, held=held, store_bytes=4096,
                         event_words=256)
    out = Signal(len(value))
    m.d.comb += out.eq(value)
    got = []

    async def tb(ctx):
        for c, h in [(0, 0), (0x123456789ABC, 0xDEADBEEF), ((1 << 48) - 1, 1)]:
            ctx.set(cycles, c)
            ctx.set(held, h)
            got.append((c, h, ctx.get(out).to_bytes(hp.BENCH.size, "little")))
    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert len(got) == 3
    for c, h, data in got:
        assert data == hp.Bench(c, h, 4096, 256).pack()


def test_store_frames_carry_the_stream_in_max_payload_pieces():
    data = bytes(range(256)) * 2
    frames = [hp.FrameDecoder().feed(f)[0] for f in hp.store_frames(data, max_payload=100)]
    assert [f.type for f in frames] == [hp.Type.STORE] * 6
    assert [len(f.payload) for f in frames] == [100] * 5 + [12]
    assert b"".join(f.payload for f in frames) == data
    assert hp.FrameDecoder().feed(hp.bench_request())[0] == hp.Frame(hp.Type.BENCH, b"")


def input_words(spikes):
    """The core's input words for samples ``(B, T, n)``, written plainly: per step the active
    channels in ascending order, then STEP; SAMPLE after each sample."""
    words = []
    for sample in spikes:
        for row in sample:
            words += [(InKind.SPIKE, int(i)) for i in range(len(row)) if row[i]]
            words.append((InKind.STEP, 0))
        words.append((InKind.SAMPLE, 0))
    return words


@given(st.integers(1, 40), st.sampled_from([1, 3, 8, 9, 16, 255, 256, 700]),
       st.sampled_from([0.0, 0.02, 0.1, 0.5, 1.0]), st.integers(0, 2**32 - 1))
@settings(max_examples=150, deadline=None)
def test_input_stream_decodes_to_every_spike_and_step(steps, n, activity, seed):
    spikes = (np.random.default_rng(seed).random((2, steps, n)) < activity).astype(np.uint8)
    data = b"".join(hp.encode_inputs(s) for s in spikes)
    assert hp.decode_inputs(data, n) == input_words(spikes)


def _steps(n, rows):
    out = np.zeros((len(rows), n), dtype=np.uint8)
    for t, row in enumerate(rows):
        out[t, row] = 1
    return out


def test_input_stream_bytes_are_the_documented_records():
    """A 20-channel sample: step 0 spikes 1 and 3 (a LIST: gaps 1, 1), step 1 nothing,
    steps 2 and 3 spike 0..15 and 4..19 (one BITMAP record after two STEPs: 3 bytes a step
    beat 16 gaps; each step's last channel ends it, the rest of its byte is ignored), then
    step 4's end and SAMPLE."""
    spikes = _steps(20, [[1, 3], [], list(range(16)), list(range(4, 20)), []])
    assert hp.encode_inputs(spikes) == bytes([
        hp.header(hp.OP_LIST, 2), 1, 1,
        hp.header(hp.OP_STEP, 2),
        hp.header(hp.OP_BITMAP, 6), 0xFF, 0xFF, 0x00, 0xF0, 0xFF, 0x0F,
        hp.header(hp.OP_STEP, 1), hp.SAMPLE_BYTE])
    # a gap of 255 or more takes the skip byte; 64 steps take one STEP header
    assert hp.encode_inputs(_steps(600, [[300]])) == bytes([
        hp.header(hp.OP_LIST, 2), 255, 45, hp.header(hp.OP_STEP, 1), hp.SAMPLE_BYTE])
    assert hp.encode_inputs(np.zeros((65, 4), np.uint8)) == bytes([
        hp.header(hp.OP_STEP, 64), hp.header(hp.OP_STEP, 1), hp.SAMPLE_BYTE])


@pytest.mark.parametrize("spikes_in_step, op", [(8, hp.OP_LIST), (9, hp.OP_LIST),
                                                (10, hp.OP_BITMAP)])
def test_each_step_takes_the_shorter_encoding(spikes_in_step, op):
    """k spikes 7 channels apart in a step of 72 channels: a LIST of k gap bytes + its header
    against a BITMAP of 9 bytes + its header; a tie (k = 9) keeps the list. Then the step's
    end (a STEP record after the list; the bitmap ends the step itself) and SAMPLE."""
    spikes = _steps(72, [list(range(0, 7 * spikes_in_step, 7))])
    data = hp.encode_inputs(spikes)
    assert data[0] >> 6 == op
    assert len(data) == (1 + spikes_in_step + 2 if op == hp.OP_LIST else 1 + 9 + 1)
    assert hp.decode_inputs(data, 72) == input_words(spikes[None])


def test_input_frames_cut_the_stream_anywhere_and_carry_several_samples():
    spikes = (np.random.default_rng(5).random((3, 30, 40)) < 0.2).astype(np.uint8)
    frames = hp.FrameDecoder().feed(b"".join(hp.input_frames(spikes, max_payload=7)))
    assert all(f.type == hp.Type.INPUT and 1 <= len(f.payload) <= 7 for f in frames)
    data = b"".join(f.payload for f in frames)
    assert data == b"".join(hp.encode_inputs(s) for s in spikes)
    assert len(frames) == -(-len(data) // 7)
    assert hp.decode_inputs(data, 40) == input_words(spikes)


# ----------------------------------------------------------------------------- gateware


def _run(dut, testbenches, vcd=None):
    sim = Simulator(dut)
    sim.add_clock(CLOCK_PERIOD_S, if_exists=True)
    for tb, background in testbenches:
        sim.add_testbench(tb, background=background)
    sim.run()


@given(st.integers(0, 0xFFFF), st.integers(0, 255))
@settings(max_examples=30, deadline=None)
def test_gateware_crc_step_equals_python(crc, byte):
    m = Module()
    from amaranth import Signal
    a, b, out = Signal(16), Signal(8), Signal(16)
    m.d.comb += out.eq(crc16_next(a, b))
    result = {}

    async def tb(ctx):
        ctx.set(a, crc)
        ctx.set(b, byte)
        result["v"] = ctx.get(out)
    _run(m, [(tb, False)])
    assert result["v"] == hp.crc16([byte], crc)


@pytest.mark.parametrize("divisor", [4, 5, 7])
def test_uart_loopback(divisor):
    """Bytes through TX, over the wire, into RX: the same bytes, in order; RX is read with
    random gaps no longer than a byte time, so nothing overruns."""
    m = Module()
    m.submodules.tx = tx = UARTTX(divisor)
    m.submodules.rx = rx = UARTRX(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    data = list(np.random.default_rng(divisor).integers(0, 256, 40)) + [0x00, 0xFF, 0x55]
    got, overruns = [], []

    async def send(ctx):
        for b in data:
            ctx.set(tx.i.payload, int(b))
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def receive(ctx):
        rng = np.random.default_rng(1)
        for _ in range(len(data) * 12 * divisor + 100):
            ctx.set(rx.o.ready, int(rng.random() < 0.3))
            _, _, valid, ready, payload, ovr = await ctx.tick().sample(
                rx.o.valid, rx.o.ready, rx.o.payload, rx.overrun)
            if valid and ready:
                got.append(payload)
            overruns.append(ovr)
    _run(m, [(send, True), (receive, False)])
    assert got == [int(b) for b in data]
    assert not any(overruns)


@pytest.mark.parametrize("divisor", [4, 5, 7, 12])
def test_uart_rx_reads_back_to_back_bytes(divisor):
    """Bytes with no idle time between them, each bit exactly ``divisor`` cycles (what a
    host UART sends): every byte arrives."""
    m = Module()
    m.submodules.rx = rx = UARTRX(divisor)
    data = bytes([hp.END, 0x04, 0x00, 0xD1, 0xCB, 0xFF, 0x80, 0x01])
    got = []

    async def line(ctx):
        await ctx.tick().repeat(5)
        for b in data:
            for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
                ctx.set(rx.rx, bit)
                await ctx.tick().repeat(divisor)

    async def receive(ctx):
        ctx.set(rx.o.ready, 1)
        for _ in range(len(data) * 10 * divisor + 20):
            _, _, valid, payload = await ctx.tick().sample(rx.o.valid, rx.o.payload)
            if valid:
                got.append(payload)
    _run(m, [(line, True), (receive, False)])
    assert bytes(got) == data


def test_uart_rx_flags_a_missing_stop_bit():
    m = Module()
    m.submodules.rx = rx = UARTRX(4)
    seen = {"frame_error": 0, "bytes": 0}

    async def tb(ctx):
        ctx.set(rx.o.ready, 1)
        bits = [0] + [1, 0, 1, 0, 1, 0, 1, 0] + [0] + [1] * 12    # stop bit 0: bad
        bits += [0] + [1, 1, 0, 0, 1, 1, 0, 0] + [1] * 4           # a good 0x33
        for bit in bits:
            ctx.set(rx.rx, bit)
            for _ in range(4):
                _, _, ferr, valid, payload = await ctx.tick().sample(rx.frame_error, rx.o.valid,
                                                                    rx.o.payload)
                seen["frame_error"] += ferr
                if valid:
                    seen["bytes"] += 1
                    seen["last"] = payload
    _run(m, [(tb, False)])
    assert seen["frame_error"] == 1
    assert seen["last"] == 0x33


class LinkBench:
    """A HostLink + Core in amaranth.sim, driven at the byte level: ``host_bytes`` go into
    ``rx`` with random gaps, ``tx`` is read with random back-pressure; returns the frames the
    board sent."""

    def __init__(self, model, lanes=1, ready_prob=0.5, valid_prob=0.7, seed=0,
                 scheme="fifo", **link):
        self.shape = CoreShape.from_model(model, lanes, scheme)
        self.model = model
        self.ready_prob, self.valid_prob, self.seed = ready_prob, valid_prob, seed
        self.link = link            # HostLink's store_bytes, event_words

    def run(self, host_bytes: bytes, expect_frames: int, max_cycles=400_000):
        m = Module()
        m.submodules.core = core = Core(self.shape)          # empty: loaded over the link
        m.submodules.link = link = HostLink(hp.shape_id(self.shape), self.shape.score_bits,
                                            self.shape.n_inputs, **self.link)
        from amaranth.lib import wiring
        wiring.connect(m, link.inputs, core.inputs)
        wiring.connect(m, link.config, core.config)
        wiring.connect(m, core.outputs, link.outputs)
        m.d.comb += link.status.eq(core.status)
        rng = np.random.default_rng(self.seed)
        decoder, frames, state = hp.FrameDecoder(), [], {"cycles": 0, "backpressure": 0}

        async def host(ctx):
            for b in host_bytes:
                while rng.random() > self.valid_prob:
                    ctx.set(link.rx.valid, 0)
                    await ctx.tick()
                ctx.set(link.rx.payload, b)
                ctx.set(link.rx.valid, 1)
                await ctx.tick().until(link.rx.ready)
            ctx.set(link.rx.valid, 0)

        async def device(ctx):
            while len(frames) < expect_frames and state["cycles"] < max_cycles:
                ctx.set(link.tx.ready, int(rng.random() < self.ready_prob))
                _, _, valid, ready, payload, ovalid, oready = await ctx.tick().sample(
                    link.tx.valid, link.tx.ready, link.tx.payload, core.outputs.valid,
                    core.outputs.ready)
                state["cycles"] += 1
                state["backpressure"] += ovalid and not oready
                if valid and ready:
                    frames.extend(decoder.feed(bytes([payload])))
        _run(m, [(host, True), (device, False)])
        self.cycles, self.backpressure = state["cycles"], state["backpressure"]
        return frames


def split_replies(frames, score_bits):
    """(replies, output words) of the board's frames, in order."""
    replies, words = [], []
    for f in frames:
        assert f.error is None, f
        if f.type >= hp.Type.SPIKE:
            words.append(hp.pack_output(*hp.event_word(f), score_bits))
        else:
            replies.append(f)
    return replies, words


PARAMS = netgen.NetParams(max_inputs=4, max_size=4, max_layers=2, d_max=(0, 4))


@pytest.mark.parametrize("seed, lanes", [(4, 1), (7, 2)])
def test_link_and_core_are_bit_exact_under_backpressure(seed, lanes):
    model, spikes = netgen.random_case(seed, PARAMS, batch=2, steps=5)
    host = b"".join(hp.config_frames(config_words(model), max_payload=40))  # several frames
    for sample in spikes:
        host += b"".join(hp.input_frames(sample, max_payload=4))
    host += hp.status_request()
    n_host = len(hp.FrameDecoder().feed(host))
    bench = LinkBench(model, lanes, ready_prob=0.4, seed=seed)
    expected = golden.run(model, spikes)
    assert sum(int(s.sum()) for s in expected.spikes) > 0      # the case exercises spikes
    n_events = sum(int(s.sum()) for s in expected.spikes) + spikes.shape[0] * (
        spikes.shape[1] + 1 + model.layers[-1].size)
    frames = bench.run(host, n_host + n_events)
    replies, words = split_replies(frames, bench.shape.score_bits)
    assert [r.type for r in replies] == [hp.Type.ACK] * (n_host - 1) + [hp.Type.STATUS_REPLY]
    sent = [f.type for f in hp.FrameDecoder().feed(host)][:-1]
    assert [r.payload[0] for r in replies[:-1]] == sent
    status = hp.Status.unpack(replies[-1].payload)      # (busy may still be clearing state)
    assert status == hp.Status(hp.VERSION, status.busy, False, 0, 0, 0, hp.DEFAULT_MAX_PAYLOAD,
                               hp.shape_id(bench.shape))
    result = protocol.decode_outputs(words, bench.shape, *spikes.shape[:2])
    assert protocol.first_difference(expected, result) is None
    assert bench.backpressure > 0          # the core really was held up by the link


def _corrupt_crc(frame: bytes) -> bytes:
    f = bytearray(frame)
    f[-2] ^= 0x01 if f[-2] not in (hp.END ^ 1, hp.ESC ^ 1) else 0x02
    return bytes(f)


BAD_FRAMES = {
    hp.Error.CRC: _corrupt_crc(hp.encode_frame(hp.Type.INPUT, b"\x00\x00")),
    hp.Error.TYPE: hp.encode_frame(0x03, b""),                 # version 1's SAMPLE_END
    hp.Error.OVERFLOW: bytes(300) + bytes([hp.END]),
    hp.Error.LENGTH: hp.encode_frame(hp.Type.MODE, b"\x01\x01"),   # MODE is one byte
}


def test_bad_frames_get_an_error_reply_and_the_link_recovers():
    """Each bad frame gets ERROR with its code, reaches nothing (the golden result is as if
    it had not been sent), and the next frame works."""
    model, spikes = netgen.random_case(10, PARAMS, batch=1, steps=4)
    good = list(hp.config_frames(config_words(model)))
    events = list(hp.input_frames(spikes[0], max_payload=4))
    host = b"".join(good)
    codes = list(BAD_FRAMES)
    for n, frame in enumerate(events):
        host += BAD_FRAMES[codes[n % len(codes)]] if n < len(codes) else b""
        host += frame
    host += hp.encode_frame(hp.Type.STATUS, b"x")        # STATUS with a payload: LENGTH
    host += hp.status_request()
    n_bad = min(len(codes), len(events)) + 1
    n_good = len(good) + len(events) + 1
    expected = golden.run(model, spikes)
    n_events = sum(int(s.sum()) for s in expected.spikes) + spikes.shape[1] + 1 + \
        model.layers[-1].size
    bench = LinkBench(model, ready_prob=0.8, seed=3)
    frames = bench.run(host, n_bad + n_good + n_events)
    replies, words = split_replies(frames, bench.shape.score_bits)
    errors = [r.payload[0] for r in replies if r.type == hp.Type.ERROR]
    assert errors == codes[:n_bad - 1] + [hp.Error.LENGTH]
    status = hp.Status.unpack(replies[-1].payload)
    assert status.bad_frames == n_bad and status.error_seen
    result = protocol.decode_outputs(words, bench.shape, *spikes.shape[:2])
    assert protocol.first_difference(expected, result) is None


def test_a_config_field_code_beyond_the_table_is_refused_not_aliased():
    """The board decodes a CONFIG record from the record table: a ``field`` byte above the
    codes saturates to an invalid code (a config error, nothing written) instead of keeping
    its low bits (0x0D would alias to PARAM 5 and overwrite beta)."""
    from delayhw.gateware.wire import Field, Param
    model, spikes = netgen.random_case(4, PARAMS, batch=1, steps=5)
    assert (0x0D & 7) == Field.PARAM
    rogue = hp.encode_frame(hp.Type.CONFIG, hp.CONFIG.pack(0, Param.BETA, 0x0D, 0, 0))
    host = b"".join(hp.config_frames(config_words(model))) + rogue
    host += b"".join(hp.input_frames(spikes[0])) + hp.status_request()
    n_host = len(hp.FrameDecoder().feed(host))
    expected = golden.run(model, spikes)
    n_events = sum(int(s.sum()) for s in expected.spikes) + spikes.shape[1] + 1 + \
        model.layers[-1].size
    bench = LinkBench(model, ready_prob=0.9, seed=1)
    replies, words = split_replies(bench.run(host, n_host + n_events), bench.shape.score_bits)
    assert [r.type for r in replies] == [hp.Type.ACK] * (n_host - 1) + [hp.Type.STATUS_REPLY]
    assert hp.Status.unpack(replies[-1].payload).config_errors == 1
    result = protocol.decode_outputs(words, bench.shape, *spikes.shape[:2])
    assert protocol.first_difference(expected, result) is None


def _stream_bytes(rng, n_bytes):
    """Random INPUT stream bytes of every kind: headers of each op with any count, gap bytes
    (255 included), bitmap bytes (bits past the last channel included)."""
    out = []
    while len(out) < n_bytes:
        op = int(rng.integers(0, 4))
        count = int(rng.choice([1, 2, 5, 64]))
        out.append(hp.header(op, count) if op != hp.OP_SAMPLE else int(rng.integers(0xC0, 0x100)))
        if op in (hp.OP_LIST, hp.OP_BITMAP):
            out += [int(rng.choice([0, 1, 7, 30, 255, int(rng.integers(0, 256))]))
                    for _ in range(count)]
    return bytes(out)


@pytest.mark.parametrize("n_inputs, seed", [(1, 0), (5, 1), (20, 2), (300, 3)])
def test_input_decoder_gateware_equals_the_reference_decoder(n_inputs, seed):
    """The board's decoder against hostlink_protocol.decode_inputs on random streams (every
    op, counts up to 64, skip bytes, bitmap bits past the last channel), bytes offered with
    gaps and words taken with random back-pressure."""
    from delayhw.gateware.hostlink import InputDecoder
    rng = np.random.default_rng(seed)
    data = _stream_bytes(rng, 100)
    expected = hp.decode_inputs(data, n_inputs)
    dut = InputDecoder(n_inputs)
    got = []

    async def feed(ctx):
        for b in data:
            ctx.set(dut.i.valid, 0)
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(dut.i.payload, b)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def take(ctx):
        idle_seen = 0
        for _ in range(10 * len(expected) + 20 * len(data)):
            ctx.set(dut.o.ready, int(rng.random() < 0.6))
            _, _, valid, ready, kind, index, idle = await ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload.kind, dut.o.payload.index, dut.idle)
            if valid and ready:
                got.append((kind, index if kind == InKind.SPIKE else 0))
            idle_seen += idle and valid
            if len(got) == len(expected):
                break
        assert idle_seen == 0                  # never idle while a word waits
        await ctx.tick().repeat(20)
        assert ctx.get(dut.idle) and not ctx.get(dut.o.valid)    # nothing more comes
    _run(dut, [(feed, True), (take, False)])
    assert got == expected
    assert {op for op in (b >> 6 for b in data)} == {0, 1, 2, 3}


def test_frame_sender_sends_what_the_encoder_does():
    """Requests of every length (0..16 payload bytes), their bytes full of END and ESC, sent
    with back-pressure: the bytes are hostlink_protocol.encode_frame's, escapes and CRC
    included."""
    from delayhw.gateware.hostlink import TX_PAYLOAD_BYTES, FrameSender
    rng = np.random.default_rng(2)
    requests = [(int(rng.choice([hp.END, hp.ESC, 0x90])), n,
                 bytes(int(rng.choice([hp.END, hp.ESC, hp.ESC_END, 0, 255, int(rng.integers(256))]))
                       for _ in range(n))) for n in list(range(TX_PAYLOAD_BYTES + 1)) * 2]
    expected = b"".join(hp.encode_frame(t, p) for t, _, p in requests)
    dut = FrameSender()
    got = bytearray()

    async def send(ctx):
        for type_, n, payload in requests:
            ctx.set(dut.i.payload, {"type": type_, "len": n,
                                    "payload": int.from_bytes(payload, "little")})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def take(ctx):
        while len(got) < len(expected):
            ctx.set(dut.o.ready, int(rng.random() < 0.5))
            _, _, valid, ready, byte = await ctx.tick().sample(dut.o.valid, dut.o.ready,
                                                               dut.o.payload)
            if valid and ready:
                got.append(byte)
    _run(dut, [(send, True), (take, False)])
    assert bytes(got) == expected
    assert expected.count(hp.ESC) > len(requests)          # escapes were exercised


def test_scores_only_mode_and_mode_restarting_the_input_stream():
    """A dangling BITMAP header (3 bytes promised, none sent), then MODE SCORES: the decoder
    starts again (else the next 3 stream bytes would be read as bitmap bytes) and the board
    sends only SCORE and SAMPLE events, dropping spikes and step ends without stalling the
    core; the scores equal the golden model's. Streams cut into 5-byte frames."""
    model, spikes = netgen.random_case(4, PARAMS, batch=2, steps=6)
    host = b"".join(hp.config_frames(config_words(model)))
    host += hp.encode_frame(hp.Type.INPUT, bytes([hp.header(hp.OP_BITMAP, 3)]))
    host += hp.mode_frame(hp.Mode.SCORES)
    host += b"".join(hp.input_frames(spikes, max_payload=5)) + hp.status_request()
    n_host = len(hp.FrameDecoder().feed(host))
    expected = golden.run(model, spikes)
    assert sum(int(s.sum()) for s in expected.spikes) > 0
    n_events = spikes.shape[0] * (model.layers[-1].size + 1)
    bench = LinkBench(model, ready_prob=0.5, seed=5)
    replies, words = split_replies(bench.run(host, n_host + n_events), bench.shape.score_bits)
    assert [r.type for r in replies] == [hp.Type.ACK] * (n_host - 1) + [hp.Type.STATUS_REPLY]
    assert hp.Status.unpack(replies[-1].payload).dropped_inputs == 0
    result = protocol.decode_scores(words, bench.shape, spikes.shape[0])
    np.testing.assert_array_equal(result.scores, expected.scores)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bench_replays_the_store_and_counts_the_cores_busy_cycles(scheme):
    """STORE frames fill the sample store (an overflowing one gets ERROR STORE_FULL and
    changes nothing), BENCH replays it into the core: the scores equal the golden model's,
    the BENCH reply comes after the last SAMPLE frame, the core's output was never held (the
    event buffer takes it) and the core-busy cycles equal the cost model's
    (CoreShape.busy_cycles) sample by sample summed; the store is empty afterwards (a second
    BENCH replays nothing)."""
    model, spikes = netgen.random_case(4, PARAMS, batch=3, steps=6)
    data = b"".join(hp.encode_inputs(s) for s in spikes)
    store = len(data) + 2
    host = b"".join(hp.config_frames(config_words(model))) + hp.mode_frame(hp.Mode.SCORES)
    host += hp.bench_request()                                   # empty store: its size
    host += b"".join(hp.store_frames(data, max_payload=7))
    host += hp.encode_frame(hp.Type.STORE, bytes(3))             # 3 > the 2 bytes left
    host += hp.bench_request() + hp.bench_request() + hp.status_request()
    n_host = len(hp.FrameDecoder().feed(host))
    bench = LinkBench(model, ready_prob=0.3, seed=2, store_bytes=store, event_words=64,
                      scheme=scheme)
    frames = bench.run(host, n_host + len(spikes) * (model.layers[-1].size + 1))
    replies, words = split_replies(frames, bench.shape.score_bits)
    types = [f.type for f in frames]
    first, last = types.index(hp.Type.BENCH_REPLY), len(types) - 3
    assert types[last] == hp.Type.BENCH_REPLY and hp.Type.SAMPLE not in types[last:]
    assert hp.Bench.unpack(frames[first].payload) == hp.Bench(0, 0, store, 64)
    errors = [r.payload for r in replies if r.type == hp.Type.ERROR]
    assert errors == [bytes([hp.Error.STORE_FULL])]
    expected = golden.run(model, spikes)
    result = protocol.decode_scores(words, bench.shape, len(spikes))
    np.testing.assert_array_equal(result.scores, expected.scores)
    run = hp.Bench.unpack(frames[last].payload)
    formula = sum(bench.shape.busy_cycles(spikes[b], [s[b] for s in expected.spikes])
                  for b in range(len(spikes)))
    assert run.held == 0 and run.cycles == formula > 0
    assert hp.Bench.unpack(frames[last + 1].payload).cycles == 0     # the store was emptied
    status = hp.Status.unpack(frames[-1].payload)
    assert (status.bad_frames, status.dropped_inputs) == (0, 0)


def test_bench_without_an_event_buffer_counts_the_cores_wait_for_the_link():
    """With no event buffer the core's scores wait for the UART: the BENCH reply says so
    (``held`` > 0) and the busy cycles include the wait; the scores are still exact."""
    model, spikes = netgen.random_case(4, PARAMS, batch=3, steps=6)
    data = b"".join(hp.encode_inputs(s) for s in spikes)
    host = b"".join(hp.config_frames(config_words(model))) + hp.mode_frame(hp.Mode.SCORES)
    host += b"".join(hp.store_frames(data)) + hp.bench_request()
    n_host = len(hp.FrameDecoder().feed(host))
    bench = LinkBench(model, ready_prob=0.2, seed=3, store_bytes=len(data))
    frames = bench.run(host, n_host + len(spikes) * (model.layers[-1].size + 1))
    assert frames[-1].type == hp.Type.BENCH_REPLY
    _, words = split_replies(frames, bench.shape.score_bits)
    expected = golden.run(model, spikes)
    np.testing.assert_array_equal(
        protocol.decode_scores(words, bench.shape, len(spikes)).scores, expected.scores)
    run = hp.Bench.unpack(frames[-1].payload)
    formula = sum(bench.shape.busy_cycles(spikes[b], [s[b] for s in expected.spikes])
                  for b in range(len(spikes)))
    assert run.held > 0 and run.cycles > formula and run.event_words == 0
