"""Co-simulation: run a model on inputs in RTL (Verilator or Icarus) and compare with the
golden model, every spike of every lif layer at every step and every score.

The model travels in the stimulus as configuration writes, so every model of one shape
shares one simulator build (:mod:`delayhw.sim.runner`).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from delayhw import children, golden
from delayhw.errors import DelayhwError
from delayhw.formats import Result, check_spikes
from delayhw.gateware import protocol, wire
from delayhw.gateware.shape import CoreShape
from delayhw.gateware.wire import OutKind
from delayhw.publish import copy_file
from delayhw.spec import LayerKind, Model, Reset

from . import runner

TAG_CONFIG, TAG_INPUT = 0, 1


@dataclass
class CosimRun:
    """One RTL run: its result and what it cost."""

    result: Result
    sim: str
    cycles: int           #: simulated clock cycles after reset
    sim_seconds: float    #: wall time the simulator spent running the cycles
    total_seconds: float  #: including Verilog generation, build (if not cached) and start-up
    build_dir: Path
    #: the simulator process's CPU time over the same span as ``sim_seconds`` (steadier than
    #: wall time when the machine is shared)
    sim_cpu_seconds: float = float("nan")
    #: where ``total_seconds`` went: build (Verilog and build, or finding the cached one),
    #: stimulus (writing it), simulator (its process, start-up included), decode (outputs)
    phases: dict = field(default_factory=dict)

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.sim_seconds if self.sim_seconds > 0 else float("nan")


def write_stimulus(path: Path, model: Model, spikes: np.ndarray) -> int:
    """The stimulus file of ``cosim_top.v``: the model's configuration writes, then the input
    events of every sample, one ``TAG HEX`` line each (hex zero-padded to the word's width).
    The words are those of :func:`protocol.config_stream` and :func:`protocol.batch_words`,
    packed here a block at a time with numpy from the same field tables (:mod:`wire`).
    Returns the number of words."""
    words = 0
    with open(path, "wb") as f:
        for tag, word, fields in (*_config_blocks(model), *_input_blocks(spikes)):
            for lo in range(0, len(fields[0][0]), _LINES_PER_BLOCK):
                part = [(v[lo:lo + _LINES_PER_BLOCK], name) for v, name in fields]
                f.write(_hex_lines(tag, word, part))
            words += len(fields[0][0])
    return words


#: Words formatted at once by :func:`write_stimulus` (bounds its temporaries to ~30 MB).
_LINES_PER_BLOCK = 1 << 16
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_lines(tag: int, word: wire.Word, fields: list[tuple[np.ndarray, str]]) -> bytes:
    """``"TAG HEX\n"`` lines of the words of ``word`` whose fields ``name`` hold the values
    ``v`` (int64 arrays of one length; other fields 0). Raises ValueError for a value that
    does not fit its field, as :meth:`wire.Word.pack` does."""
    n = len(fields[0][0])
    digits = -(-word.width // 4)
    bits = np.zeros((n, 4 * digits), dtype=np.uint8)
    for values, name in fields:
        spec = dict(word.fields)[name]
        width, signed = spec.width, isinstance(spec, wire.Bits) and spec.signed
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        values = np.asarray(values, dtype=np.int64)
        if n and (values.min() < lo or values.max() > hi):
            raise ValueError(f"{word.name}.{name}: a value does not fit {width} "
                             f"{'signed ' if signed else ''}bits")
        at = word.offset(name)
        raw = (values & ((1 << width) - 1)).astype(np.uint64)
        bits[:, at:at + width] = (raw[:, None] >> np.arange(width, dtype=np.uint64)) & 1
    nibbles = bits.reshape(n, digits, 4) @ np.array([1, 2, 4, 8], dtype=np.uint8)
    text = np.empty((n, digits + 3), dtype=np.uint8)
    text[:, 0], text[:, 1], text[:, -1] = ord(str(tag)), ord(" "), ord("\n")
    text[:, 2:2 + digits] = _HEX[nibbles[:, ::-1]]
    return text.tobytes()


def _config_blocks(model: Model):
    """``(TAG_CONFIG, wire.CONFIG, fields)`` blocks of the configuration writes, in the
    order of :func:`delayhw.gateware.shape.config_words`: per layer its parameters, then
    W, D, W_rec, D_rec (row-major) and bias."""
    addr = wire.CONFIG_ADDR
    for k, layer in enumerate(model.layers):
        entries = [(wire.Field.PARAM, np.array([[int(wire.Param.BETA)]]),
                    np.array([[layer.beta]]))]
        if layer.kind is LayerKind.LIF:
            entries.append((wire.Field.PARAM,
                            np.array([[int(wire.Param.THRESHOLD)], [int(wire.Param.RESET)]]),
                            np.array([[layer.threshold], [Reset(layer.reset).zero_bit]])))
        mats = [(wire.Field.W, layer.w), (wire.Field.D, layer.d)]
        if layer.recurrent:
            mats += [(wire.Field.W_REC, layer.w_rec), (wire.Field.D_REC, layer.d_rec)]
        for fld, mat in mats:
            entries.append((fld, None, np.asarray(mat)))
        if layer.has_bias:
            entries.append((wire.Field.BIAS, None, np.asarray(layer.bias).reshape(-1, 1)))
        for fld, rows, data in entries:
            if rows is None:
                rows = np.broadcast_to(np.arange(data.shape[0])[:, None], data.shape)
            cols = np.broadcast_to(np.arange(data.shape[1])[None, :], data.shape)
            n = data.size
            address = {"layer": np.full(n, k), "field": np.full(n, int(fld)),
                       "row": np.ravel(rows), "col": np.ravel(cols)}
            packed = _pack(addr, address)
            yield TAG_CONFIG, wire.CONFIG, [(packed, "addr"), (np.ravel(data), "data")]


def _pack(word: wire.Word, values: dict[str, np.ndarray]) -> np.ndarray:
    """``word.pack`` of many words at once (int64: ``word`` must be under 63 bits)."""
    assert word.width < 63
    out = np.zeros(len(next(iter(values.values()))), dtype=np.int64)
    for name, v in values.items():
        width = dict(word.fields)[name].width
        v = np.asarray(v, dtype=np.int64)
        if len(v) and (v.min() < 0 or v.max() >= 1 << width):
            raise ValueError(f"{word.name}.{name}: a value does not fit {width} bits")
        out |= v << word.offset(name)
    return out


def _input_blocks(spikes: np.ndarray):
    """The ``(TAG_INPUT, wire.INPUT, fields)`` block of :func:`protocol.batch_words`: per
    sample, per step a SPIKE per active channel (ascending) then STEP; finally SAMPLE."""
    spikes = np.asarray(spikes)
    batch, steps, _ = spikes.shape
    counts = np.count_nonzero(spikes, axis=2)                        # (B, T)
    # blocks in order: (b, 0..T-1) of spikes then STEP, then (b, T): SAMPLE alone
    lengths = np.concatenate([counts + 1, np.ones((batch, 1), dtype=counts.dtype)], 1).ravel()
    ends = np.cumsum(lengths) - 1                                    # last word of each block
    kind = np.full(int(lengths.sum()), int(wire.InKind.STEP), dtype=np.int64)
    index = np.zeros_like(kind)
    kind[ends.reshape(batch, steps + 1)[:, -1]] = int(wire.InKind.SAMPLE)
    b, t, i = np.nonzero(spikes)                                     # row-major: ascending
    block = b * (steps + 1) + t
    first = np.cumsum(lengths) - lengths                             # first word of each block
    rank = np.arange(len(i)) - np.searchsorted(block, block, side="left")
    at = first[block] + rank
    kind[at] = int(wire.InKind.SPIKE)
    index[at] = i
    yield TAG_INPUT, wire.INPUT, [(kind, "kind"), (index, "index")]


def cycle_bound(shape: CoreShape, words: int, batch: int, steps: int, ready_prob: float) -> int:
    """A generous upper bound of the cycles a run may take (the testbench's timeout)."""
    # (every spike may also wait one cycle for the output stream)
    per_sample = steps * (shape.cycles_per_step() + sum(l.size for l in shape.layers)) + \
        shape.clear_cycles() + 4 * shape.layers[-1].size + 64
    bound = 2 * (words + batch * per_sample) + 10_000
    return int(bound / min(1.0, max(ready_prob, 1e-3)))


def _count_samples(path: Path, state: dict) -> int:
    """SAMPLE markers in the output file so far (read incrementally)."""
    try:
        with open(path) as f:
            f.seek(state.get("offset", 0))
            chunk = f.read()
    except FileNotFoundError:
        return 0
    complete = chunk[:chunk.rfind("\n") + 1]
    state["offset"] = state.get("offset", 0) + len(complete)
    kind_mask = (1 << wire.KIND_BITS) - 1        # the kind is the low bits of an output word
    for line in complete.split():
        if int(line[-1], 16) & kind_mask == OutKind.SAMPLE:
            state["samples"] = state.get("samples", 0) + 1
    return state.get("samples", 0)


def run_rtl(model: Model, spikes: np.ndarray, *, sim: str = "verilator", scheme: str = "fifo",
            lanes: int = 1, ready_prob: float = 1.0, seed: int = 1, waves: bool = False,
            workdir: Path | None = None,
            on_progress: Callable[[int], None] | None = None,
            memory: str = "bram") -> CosimRun:
    """Run ``model`` on ``spikes`` ``(B, T, n_inputs)`` in RTL and decode the outputs.
    ``on_progress(samples_done)`` is called as samples finish. ``memory="spram"`` simulates
    the core with its largest synapse memories in iCE40 SPRAM (Yosys's cell model)."""
    t0 = time.perf_counter()
    spikes = check_spikes("cosim", spikes, model.n_inputs, nonempty=False)
    batch, steps, _ = spikes.shape
    shape = CoreShape.from_model(model, lanes, scheme, memory=memory)
    protocol.check_steps(shape, steps)
    build = runner.build(shape, sim, waves)
    phases = {"build": time.perf_counter() - t0}
    own_dir = workdir is None
    # an own folder is registered: removed on the command's exit path too
    workdir = children.temp_dir("delayhw-cosim-") if own_dir else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    thread = threading.Thread()          # not started: nothing to stop yet
    try:
        stim, out, stats = workdir / "stimulus.txt", workdir / "outputs.txt", workdir / "stats.json"
        mark = time.perf_counter()
        words = write_stimulus(stim, model, spikes)
        phases["stimulus"] = time.perf_counter() - mark
        bound = cycle_bound(shape, words, batch, steps, ready_prob)
        outcome: dict = {}

        def simulate():
            try:
                outcome["stats"] = runner.run(build, stim, out, stats, workdir, max_cycles=bound,
                                              ready_prob=ready_prob, seed=seed, waves=waves)
            except BaseException as exc:       # re-raised in the caller's thread
                outcome["error"] = exc

        mark = time.perf_counter()
        thread = threading.Thread(target=simulate, daemon=True)
        thread.start()
        progress: dict = {}
        while thread.is_alive():
            thread.join(0.2)
            if on_progress is not None:
                on_progress(_count_samples(out, progress))
        phases["simulator"] = time.perf_counter() - mark
        if "error" in outcome:
            raise outcome["error"]
        mark = time.perf_counter()
        result = decode_outputs(out.read_bytes(), shape, batch, steps)
        phases["decode"] = time.perf_counter() - mark
        if on_progress is not None:
            on_progress(batch)
        stats = outcome["stats"]
        return CosimRun(result, sim, stats["cycles"], stats["wall_s"], time.perf_counter() - t0,
                        build.directory, stats.get("cpu_s", float("nan")), phases)
    finally:
        if thread.is_alive():            # left by an exception (SIGINT/SIGTERM): stop the
            children.stop_all()          # simulator before its folder is removed; the runner
            thread.join(60)              # thread still writes its results file, so wait for it
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
            if sys.exc_info()[0] is None:
                children.release_temp_dir(workdir)   # else stop_all removes it once more


_HEX_VALUE = np.full(256, 255, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16)
_HEX_VALUE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


def decode_outputs(text: bytes, shape: CoreShape, batch: int, steps: int) -> Result:
    """:func:`protocol.decode_outputs` of the output file ``text`` (one hex word a line):
    vectorised for a stream that follows the protocol; any other stream (or one it cannot
    read that way) goes through :func:`protocol.decode_outputs` itself, for its error."""
    fast = _decode_fast(text, shape, batch, steps)
    if fast is not None:
        return fast
    return protocol.decode_outputs([int(line, 16) for line in text.split()], shape, batch, steps)


def _decode_fast(text: bytes, shape: CoreShape, batch: int, steps: int) -> Result | None:
    """The result of a protocol-conforming output stream, or None for anything else."""
    word = wire.output(shape.score_bits)
    if word.width > 63 or batch == 0:
        return None
    width = text.find(b"\n")
    if width <= 0 or len(text) % (width + 1):
        return None
    lines = np.frombuffer(text, dtype=np.uint8).reshape(-1, width + 1)
    if (lines[:, -1] != ord("\n")).any():
        return None
    nibbles = _HEX_VALUE[lines[:, :-1]]
    if (nibbles > 15).any() or 4 * width > 64:
        return None
    words = np.zeros(len(lines), dtype=np.uint64)
    for k in range(width):
        words = (words << np.uint64(4)) | nibbles[:, k].astype(np.uint64)
    f = {name: ((words >> np.uint64(word.offset(name)))
                & np.uint64((1 << dict(word.fields)[name].width) - 1)).astype(np.int64)
         for name in ("kind", "layer", "unit", "value")}
    vbits = dict(word.fields)["value"].width
    value = np.where(f["value"] >> (vbits - 1), f["value"] - (1 << vbits), f["value"])
    kind, layer, unit = f["kind"], f["layer"], f["unit"]
    if (words >> np.uint64(word.width)).any() or kind.max() > max(wire.OutKind):
        return None
    is_sample, is_step = kind == wire.OutKind.SAMPLE, kind == wire.OutKind.STEP
    if is_sample.sum() != batch or not is_sample[-1]:
        return None
    sample = np.cumsum(is_sample) - is_sample                 # the sample each word is in
    if (np.bincount(sample[is_step], minlength=batch) != steps).any():
        return None
    t = np.cumsum(is_step) - is_step - sample * steps          # steps of its sample before it
    sizes = np.array([l.size for l in shape.layers])
    lif = np.array([l.kind is LayerKind.LIF for l in shape.layers])
    n_out = int(sizes[-1])
    spike = kind == wire.OutKind.SPIKE
    sl, su, st, sb = layer[spike], unit[spike], t[spike], sample[spike]
    if len(sl) and ((st >= steps).any() or (sl >= len(sizes)).any()):
        return None
    if len(sl) and ((~lif[sl]).any() or (su >= sizes[sl]).any()):
        return None
    key = (sl << 20) | su                                      # (layer, unit) in order
    same_step = (sb[1:] == sb[:-1]) & (st[1:] == st[:-1])
    if (same_step & (key[1:] <= key[:-1])).any():
        return None
    score = kind == wire.OutKind.SCORE
    cu = unit[score]
    if (t[score] != steps).any() or (cu >= n_out).any():
        return None
    slots = sample[score] * n_out + cu
    if (np.bincount(slots, minlength=batch * n_out) != 1).any() or value[is_sample].any():
        return None
    lif_index = np.cumsum(lif) - 1
    trains = [np.zeros((batch, steps, l.size), dtype=np.uint8)
              for l in shape.layers if l.kind is LayerKind.LIF]
    for k in np.flatnonzero(lif):
        mine = sl == k
        trains[lif_index[k]][sb[mine], st[mine], su[mine]] = 1
    scores = np.zeros((batch, n_out), dtype=np.int64)
    scores[sample[score], cu] = value[score]
    return Result.from_scores(scores, trains)


def compare(model: Model, spikes: np.ndarray, rtl: Result) -> protocol.Difference | None:
    """None if the RTL result equals the golden model's bit for bit, else where it first
    differs (sample, step, layer, unit)."""
    return protocol.first_difference(golden.run(model, spikes), rtl)


def record_waveform(model: Model, spikes: np.ndarray, sample: int, path: Path, *,
                    sim: str = "verilator", scheme: str = "fifo", lanes: int = 1,
                    force: bool = False) -> Path:
    """Re-run one sample with waveform tracing; save the trace at ``path`` plus the suffix of
    the simulator's format (``.vcd`` from Verilator, ``.fst`` from Icarus), published by
    :func:`delayhw.publish.copy_file` (an existing file is replaced only with ``force``)."""
    with tempfile.TemporaryDirectory(prefix="delayhw-waves-") as tmp:
        run_rtl(model, spikes[sample:sample + 1], sim=sim, scheme=scheme, lanes=lanes,
                waves=True, workdir=Path(tmp))
        traces = sorted(Path(tmp).rglob("*.vcd")) + sorted(Path(tmp).rglob("*.fst"))
        if not traces:
            raise DelayhwError(f"{sim}: the waveform run produced no trace file")
        return copy_file(traces[0], Path(f"{path}{traces[0].suffix}"), force=force,
                         flag="waveform")
