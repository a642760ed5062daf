"""Packing of the core's stream payloads as integers, and conversion between input files /
result files and event sequences. Pure Python: shared by amaranth.sim, cocotb and the host.

The words are packed by the field tables of :mod:`delayhw.gateware.wire`, from which the
Amaranth layouts of :mod:`delayhw.gateware.core` are made too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from delayhw.errors import DelayhwError
from delayhw.formats import Result
from delayhw.spec import LayerKind

from . import wire
from .shape import CoreShape
from .wire import InKind, OutKind

INPUT_BITS = wire.INPUT.width
CONFIG_BITS = wire.CONFIG.width


class ProtocolError(DelayhwError):
    """The core's output stream does not follow the protocol."""


def input_word(kind: InKind, index: int = 0) -> int:
    return wire.INPUT.pack(kind=int(kind), index=index)


def config_word(address: int, value: int) -> int:
    """A configuration write of ``value`` (signed) at ``address`` (:func:`wire.config_address`)."""
    return wire.CONFIG.pack(addr=address, data=value)


def sample_words(spikes: np.ndarray) -> list[int]:
    """Input words of one sample ``(T, n_inputs)``: per step a SPIKE per active channel
    (ascending) then STEP; finally SAMPLE."""
    words = []
    for row in np.asarray(spikes):
        words.extend(input_word(InKind.SPIKE, int(i)) for i in np.flatnonzero(row))
        words.append(input_word(InKind.STEP))
    words.append(input_word(InKind.SAMPLE))
    return words


def batch_words(spikes: np.ndarray) -> list[int]:
    """Input words of a whole batch ``(B, T, n_inputs)``."""
    return [w for sample in np.asarray(spikes) for w in sample_words(sample)]


def output_bits(shape: CoreShape) -> int:
    """Width of an output word of a core of ``shape`` (its value is ``score_bits`` wide)."""
    return wire.output(shape.score_bits).width


def unpack_output(word: int, score_bits: int) -> tuple[int, int, int, int]:
    """``(kind, layer, unit, value)`` of an output word (value sign-extended from
    ``score_bits``, :attr:`CoreShape.score_bits`)."""
    f = wire.output(score_bits).unpack(word)
    return f["kind"], f["layer"], f["unit"], f["value"]


def check_steps(shape: CoreShape, steps: int, source: str = "input") -> None:
    """Raise DelayhwError if samples of ``steps`` steps are longer than the core's scores
    are exact for."""
    if steps > shape.max_steps:
        raise DelayhwError(f"{source}: spikes: {steps} steps per sample exceed the core's "
                           f"max_steps {shape.max_steps} (scores are {shape.score_bits} bits); "
                           f"generate the core with a larger --max-steps")


def decode_outputs(words: Iterable[int], shape: CoreShape, batch: int, steps: int) -> Result:
    """Turn the output words of ``batch`` samples of ``steps`` steps into a :class:`Result`.
    Raises :class:`ProtocolError` on anything the protocol does not allow (events out of
    order, out of range, duplicated or missing)."""
    lif = [k for k, l in enumerate(shape.layers) if l.kind is LayerKind.LIF]
    n_out = shape.layers[-1].size
    spikes = [np.zeros((batch, steps, shape.layers[k].size), dtype=np.uint8) for k in lif]
    scores = np.zeros((batch, n_out), dtype=np.int64)
    b, t, last = 0, 0, (-1, -1)
    seen_scores = np.zeros(n_out, dtype=bool)
    for n, word in enumerate(words):
        kind, layer, unit, value = unpack_output(int(word), shape.score_bits)
        where = f"output event {n} (sample {b}, step {t})"
        if b >= batch:
            raise ProtocolError(f"{where}: more samples than the {batch} sent")
        if kind == OutKind.SPIKE:
            if t >= steps or layer not in lif or unit >= shape.layers[layer].size:
                raise ProtocolError(f"{where}: spike of layer {layer} unit {unit} is out of range")
            if (layer, unit) <= last:
                raise ProtocolError(f"{where}: spike of layer {layer} unit {unit} out of order")
            last = (layer, unit)
            spikes[layer][b, t, unit] = 1
        elif kind == OutKind.STEP:
            if t >= steps:
                raise ProtocolError(f"{where}: more steps than the {steps} sent")
            t, last = t + 1, (-1, -1)
        elif kind == OutKind.SCORE:
            if t != steps or unit >= n_out or seen_scores[unit]:
                raise ProtocolError(f"{where}: unexpected score for unit {unit}")
            seen_scores[unit] = True
            scores[b, unit] = value
        else:
            if t != steps or not seen_scores.all():
                raise ProtocolError(f"{where}: sample ended after {t} steps with "
                                    f"{int(seen_scores.sum())}/{n_out} scores")
            if value:
                raise ProtocolError(f"{where}: the core flags the sample as longer than its "
                                    f"max_steps {shape.max_steps}: its scores are not exact")
            b, t, last = b + 1, 0, (-1, -1)
            seen_scores[:] = False
    if b != batch:
        raise ProtocolError(f"the core finished {b} of {batch} samples")
    return Result.from_scores(scores, spikes)


def decode_scores(words: Iterable[int], shape: CoreShape, batch: int) -> Result:
    """:func:`decode_outputs` for a board that sends only scores and sample ends (the host
    link's scores-only mode): a :class:`Result` without spikes."""
    n_out = shape.layers[-1].size
    scores = np.zeros((batch, n_out), dtype=np.int64)
    seen = np.zeros(n_out, dtype=bool)
    b = 0
    for n, word in enumerate(words):
        kind, _, unit, value = unpack_output(int(word), shape.score_bits)
        where = f"output event {n} (sample {b})"
        if b >= batch:
            raise ProtocolError(f"{where}: more samples than the {batch} sent")
        if kind == OutKind.SCORE and unit < n_out and not seen[unit]:
            seen[unit], scores[b, unit] = True, value
        elif kind == OutKind.SAMPLE and seen.all():
            if value:
                raise ProtocolError(f"{where}: the core flags the sample as longer than its "
                                    f"max_steps {shape.max_steps}: its scores are not exact")
            b, seen[:] = b + 1, False
        else:
            raise ProtocolError(f"{where}: unexpected event (kind {kind}, unit {unit}) in "
                                f"scores-only mode")
    if b != batch:
        raise ProtocolError(f"the core finished {b} of {batch} samples")
    return Result.from_scores(scores, [])


def config_stream(model) -> list[int]:
    """Packed configuration words that load ``model`` (see :func:`shape.config_words`)."""
    from .shape import config_words
    return [config_word(a, v) for a, v in config_words(model)]


@dataclass(frozen=True)
class Difference:
    """The first place two results differ: a spike of lif layer ``layer`` at ``step``, or
    (``step`` None) the score of readout unit ``unit``. ``golden`` is the expected side's
    value, ``rtl`` the actual side's; ``sides`` names them in messages."""

    sample: int
    step: int | None
    layer: int
    unit: int
    golden: int
    rtl: int
    sides: tuple[str, str] = ("golden", "RTL")

    def __str__(self) -> str:
        expected, actual = self.sides
        if self.step is None:
            return (f"sample {self.sample}, scores of layer {self.layer}, unit {self.unit}: "
                    f"{expected} {self.golden}, {actual} {self.rtl}")
        return (f"sample {self.sample}, step {self.step}, layer {self.layer}, unit {self.unit}: "
                f"{expected} spike {self.golden}, {actual} spike {self.rtl}")


def first_difference(expected: Result, actual: Result,
                     sides: tuple[str, str] = ("golden", "RTL")) -> Difference | None:
    """Where two results first differ in execution order (sample, step, layer, unit; spikes
    before scores), or None if they are identical; ``sides`` names the two in messages."""
    for b in range(expected.scores.shape[0]):
        first = None
        for k, (e, a) in enumerate(zip(expected.spikes, actual.spikes)):
            diff = np.argwhere(e[b] != a[b])            # row-major: earliest step, lowest unit
            if len(diff):
                t, j = (int(x) for x in diff[0])
                first = min(first or (t, k, j), (t, k, j))
        if first is not None:
            t, k, j = first
            return Difference(b, t, k, j, int(expected.spikes[k][b, t, j]),
                              int(actual.spikes[k][b, t, j]), sides)
        diff = np.flatnonzero(expected.scores[b] != actual.scores[b])
        if len(diff):
            j = int(diff[0])
            return Difference(b, None, len(expected.spikes), j, int(expected.scores[b, j]),
                              int(actual.scores[b, j]), sides)
    return None
