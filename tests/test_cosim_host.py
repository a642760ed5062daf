"""The host side of co-simulation without a simulator: the stimulus file written with numpy
against the protocol's own word encoders, and the build memo of the simulator runner."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delayhw import netgen
from delayhw.gateware import protocol, wire
from delayhw.gateware.shape import CoreShape
from delayhw.sim import cosim, runner
from strategies import models


def read_stimulus(path: Path) -> list[tuple[int, int]]:
    return [(int(tag), int(word, 16)) for tag, word in
            (line.split() for line in path.read_text().splitlines())]


def expected_stimulus(model, spikes) -> list[tuple[int, int]]:
    return ([(cosim.TAG_CONFIG, w) for w in protocol.config_stream(model)]
            + [(cosim.TAG_INPUT, w) for w in protocol.batch_words(spikes)])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(model=models(max_inputs=6, max_size=6), batch=st.integers(0, 3),
       steps=st.integers(1, 6), density=st.sampled_from([0.0, 0.3, 1.0]),
       seed=st.integers(0, 2**16))
def test_stimulus_words_are_the_protocols(tmp_path, model, batch, steps, density, seed):
    # sparse, dense, empty steps and empty batches; every field kind, bias, recurrence
    spikes = netgen.random_spikes(np.random.default_rng(seed), batch, steps, model.n_inputs,
                                  density)
    path = tmp_path / "stim.txt"
    count = cosim.write_stimulus(path, model, spikes)
    got = read_stimulus(path)
    assert got == expected_stimulus(model, spikes)
    assert count == len(got)


def test_stimulus_in_several_blocks_and_extreme_values(tmp_path, monkeypatch):
    # blocks of 7 lines; weights at both ends of 16 bits, the widest data and indices
    monkeypatch.setattr(cosim, "_LINES_PER_BLOCK", 7)
    model, spikes = netgen.random_case(2, netgen.NetParams(max_inputs=9, max_size=9),
                                       batch=3, steps=5)
    hidden = model.layers[0]
    w = np.where(np.arange(hidden.w.size).reshape(hidden.w.shape) % 2, 32767, -32768)
    from dataclasses import replace
    model = model.with_layers([replace(hidden, w_bits=16, w=w), *model.layers[1:]])
    path = tmp_path / "stim.txt"
    cosim.write_stimulus(path, model, spikes)
    assert read_stimulus(path) == expected_stimulus(model, spikes)


def test_a_value_too_wide_for_its_field_is_refused():
    with pytest.raises(ValueError, match="input.index"):
        cosim._hex_lines(cosim.TAG_INPUT, wire.INPUT,
                         [(np.array([0]), "kind"), (np.array([1 << wire.INDEX_BITS]), "index")])
    with pytest.raises(ValueError, match="config.data"):
        cosim._hex_lines(cosim.TAG_CONFIG, wire.CONFIG,
                         [(np.array([0]), "addr"), (np.array([1 << 31]), "data")])


def test_a_cached_build_is_found_without_generating_verilog(tmp_path, monkeypatch):
    monkeypatch.setenv("DELAYHW_SIM_CACHE", str(tmp_path))
    monkeypatch.setattr(runner, "check_simulator", lambda sim: None)
    shape = CoreShape.from_model(netgen.example_model(), 1, "fifo")
    calls = []

    def fake_verilog(s):
        calls.append(s)
        return "module delayhw_core; endmodule"

    def fake_build(self, **kwargs):
        (kwargs["build_dir"] / "built-by-fake").write_text("")

    monkeypatch.setattr(runner, "_core_verilog", fake_verilog)
    monkeypatch.setattr(runner.Build, "runner", lambda self: type("R", (), {"build": fake_build})())
    first = runner.build(shape, "icarus")
    assert calls == [shape] and (first.directory / "BUILT").exists()
    again = runner.build(shape, "icarus")
    assert again == first and calls == [shape]          # found through the memo
    other = CoreShape.from_model(netgen.example_model(), 2, "fifo")
    runner.build(other, "icarus")
    assert calls == [shape, other]                       # another shape: generated
    (first.directory / "BUILT").unlink()                 # a build that died half-way
    runner.build(shape, "icarus")
    assert calls == [shape, other, shape]


def output_words(shape, spikes, scores, steps, rng) -> list[int]:
    """The output words a conforming core sends for these spike trains and scores (scores
    in a random order)."""
    word = wire.output(shape.score_bits)
    out = []
    for b in range(scores.shape[0]):
        for t in range(steps):
            for k, train in enumerate(spikes):
                out += [word.pack(kind=wire.OutKind.SPIKE, layer=k, unit=int(j))
                        for j in np.flatnonzero(train[b, t])]
            out.append(word.pack(kind=wire.OutKind.STEP))
        for j in rng.permutation(scores.shape[1]):
            out.append(word.pack(kind=wire.OutKind.SCORE, unit=int(j), value=int(scores[b, j])))
        out.append(word.pack(kind=wire.OutKind.SAMPLE))
    return out


def as_text(shape, words) -> bytes:
    digits = -(-wire.output(shape.score_bits).width // 4)
    return "".join(f"{w:0{digits}x}\n" for w in words).encode()


def outcome(decode, *args):
    try:
        r = decode(*args)
        return ("ok", r.scores.tolist(), [s.tolist() for s in r.spikes])
    except protocol.ProtocolError as exc:
        return ("error", str(exc))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**16), batch=st.integers(1, 3), steps=st.integers(1, 5),
       mutation=st.sampled_from(["none", "drop", "duplicate", "swap", "kind", "unit",
                                 "layer", "value", "truncate"]))
def test_output_decoding_agrees_with_the_protocol(seed, batch, steps, mutation):
    # Conforming streams decode to the same result; every broken one to the same error.
    rng = np.random.default_rng(seed)
    model, _ = netgen.random_case(seed % 50, netgen.NetParams(max_inputs=5, max_size=5))
    shape = CoreShape.from_model(model, 1, "fifo")
    spikes = [(rng.random((batch, steps, l.size)) < 0.4).astype(np.uint8)
              for l in model.layers if l.kind == "lif"]
    lo, hi = -(1 << (shape.score_bits - 1)), (1 << (shape.score_bits - 1)) - 1
    scores = rng.integers(lo, hi, (batch, model.layers[-1].size), endpoint=True)
    scores[0, 0] = lo                                       # the extremes of a score
    words = output_words(shape, spikes, scores, steps, rng)
    word = wire.output(shape.score_bits)
    n = int(rng.integers(len(words)))
    if mutation == "drop":
        del words[n]
    elif mutation == "duplicate":
        words.insert(n, words[n])
    elif mutation == "swap":
        words[n], words[n - 1] = words[n - 1], words[n]
    elif mutation == "truncate":
        words = words[:n]
    elif mutation != "none":
        fields = word.unpack(words[n])
        field = mutation
        bits = dict(word.fields)[field].width
        fields[field] = int(rng.integers(0, 1 << bits))
        if field == "value" and fields[field] >> (bits - 1):
            fields[field] -= 1 << bits
        words[n] = word.pack(**fields)
    text = as_text(shape, words)
    slow = outcome(lambda: protocol.decode_outputs([int(x, 16) for x in text.split()], shape,
                                                   batch, steps))
    fast = outcome(lambda: cosim.decode_outputs(text, shape, batch, steps))
    assert fast == slow
    if mutation == "none":
        assert fast[0] == "ok" and cosim._decode_fast(text, shape, batch, steps) is not None
        assert fast[1] == scores.tolist()


def test_a_simulation_that_stops_early_is_a_delayhw_error_not_an_exit(tmp_path):
    """cocotb's runner calls sys.exit when a test fails (always under pytest, and outside it
    when the simulator's exit code is not 0): run_test turns that into the one-line error,
    with the log's tail, instead of a silent exit."""
    from delayhw.errors import DelayhwError

    class Exiting:
        def test(self, **kwargs):
            (tmp_path / "sim.log").write_text("DP16KD x: not modelled\n")
            raise SystemExit(1)

    class FakeBuild:
        sim, directory, waves = "icarus", tmp_path, False

        def runner(self):
            return Exiting()

    with pytest.raises(DelayhwError, match="(?s)did not finish.*not modelled"):
        runner.run_test(FakeBuild(), "m", "top", tmp_path, [], tmp_path / "stats.json")
