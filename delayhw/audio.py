"""The audio front-end: a model of the ear in exact integer arithmetic (docs/audio.md).

A recording (int16 PCM at :attr:`AudioEncoding.sample_rate`, mono) becomes a spike raster
``(steps, bands * levels)`` uint8 in four integer stages, each defined in docs/audio.md,
"Front-end arithmetic", and checked against the plain-loop :func:`delayhw.reference.encode_audio`:

1. **Filterbank**: one second-order band-pass (biquad, Q14 coefficients, mel-spaced centres)
   per band on the samples scaled by ``2**IN_SHIFT``.
2. **Envelope**: the rectified output ``|y|`` summed over each step of ``hop`` samples.
3. **Log compression**: a piecewise-linear log2 with ``LOG_FRAC`` fractional bits
   (exact: leading-one position and the bits after it), then the recording's peak over
   all bands and steps is subtracted (level normalisation: a louder or quieter recording
   gives the same spikes).
4. **Spikes**: ``levels`` thermometer channels per band: channel ``b * levels + k`` spikes
   at step t when the band's level is at least ``-(k + 1) * level_step`` (from the peak).
   The window of ``steps`` steps starts at the first step with any spike (leading silence
   and noise below the lowest level are skipped); shorter recordings end in silence,
   longer ones are cut.

Everything after the int16 samples is integer arithmetic (numpy int64), so one recording
gives the same spikes on every machine. :func:`design_encoding` derives an encoding from
training recordings (the rule is in its docstring); the encoding is stored in the model
file so new recordings are encoded the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import DelayhwError

__all__ = ["AudioEncoding", "design_encoding", "encode", "encode_many", "band_envelopes",
           "log2_fixed", "levels_to_spikes", "band_coefficients", "COEF_FRAC", "IN_SHIFT", "LOG_FRAC", "FORMAT"]

#: Fractional bits of the biquad coefficients (Q14).
COEF_FRAC = 14
#: Input samples are scaled by 2**IN_SHIFT before filtering (guard bits for the recursion).
IN_SHIFT = 6
#: Fractional bits of the log2 levels.
LOG_FRAC = 4
#: Bounds a stored encoding must meet (docs/audio.md, "Bounds"): with them ``|y| < 2**45``
#: and a step's envelope stays below ``2**58`` for any int16 input, so int64 never overflows.
MAX_HOP = 1 << 13
MAX_B0 = 1 << (COEF_FRAC - 1)
MAX_A2 = (1 << COEF_FRAC) - 8
#: ``format`` tag of the JSON record of an encoding.
FORMAT = "delayhw-audio"

#: Defaults chosen by measurement (docs/audio.md, "Choosing the front-end").
DEFAULT_BANDS = 32
DEFAULT_LEVELS = 4
DEFAULT_LEVEL_STEP = 3 << (LOG_FRAC - 1)     # 1.5 octaves of the envelope, about 9 dB
DEFAULT_STEP_MS = 10.0
DEFAULT_F_LO = 100.0
DEFAULT_STEP_PERCENTILE = 95.0


def _mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


def _inv_mel(m: float) -> float:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@dataclass(frozen=True)
class AudioEncoding:
    """An encoding: every number :func:`encode` uses, stored in model and input files.

    ``coeffs[b] = (b0, a1, a2)`` in Q14: ``y[n] = (b0 * (x[n] - x[n-2]) - a1 * y[n-1]
    - a2 * y[n-2] + 2**13) >> 14`` on ``x = samples * 2**IN_SHIFT``.
    """

    sample_rate: int
    hop: int
    steps: int
    levels: int
    level_step: int
    coeffs: tuple[tuple[int, int, int], ...]
    centres_hz: tuple[float, ...] = field(default=(), compare=False)

    @property
    def bands(self) -> int:
        return len(self.coeffs)

    @property
    def n_channels(self) -> int:
        return self.bands * self.levels

    @property
    def step_ms(self) -> float:
        return 1000.0 * self.hop / self.sample_rate

    def max_samples(self) -> int:
        """Samples of the longest stretch :func:`encode` looks at (``steps`` steps)."""
        return self.hop * self.steps

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["coeffs"] = [list(c) for c in self.coeffs]
        d["centres_hz"] = [round(f, 3) for f in self.centres_hz]
        return {"format": FORMAT, "version": 1, "coef_frac": COEF_FRAC, "in_shift": IN_SHIFT,
                "log_frac": LOG_FRAC, **d}

    @classmethod
    def from_json(cls, d: Any, source: str = "encoding") -> "AudioEncoding":
        """Checked inverse of :meth:`to_json`; raises :class:`DelayhwError` naming the field."""
        def bad(name: str, rule: str) -> DelayhwError:
            return DelayhwError(f"{source}: audio encoding: {name}: {rule}")

        if not isinstance(d, dict):
            raise bad("(record)", "must be a JSON object")
        if d.get("format") != FORMAT or d.get("version") != 1:
            raise bad("format", f"must be {FORMAT!r} version 1")
        for name, want in (("coef_frac", COEF_FRAC), ("in_shift", IN_SHIFT),
                           ("log_frac", LOG_FRAC)):
            if d.get(name) != want:
                raise bad(name, f"must be {want} (this version's fixed-point format)")

        def integer(name: str, lo: int, hi: int) -> int:
            v = d.get(name)
            if type(v) is not int or not lo <= v <= hi:
                raise bad(name, f"must be an integer in {lo}..{hi}")
            return v

        rate = integer("sample_rate", 1000, 192_000)
        hop = integer("hop", 1, MAX_HOP)
        steps = integer("steps", 1, 1 << 16)
        levels = integer("levels", 1, 64)
        level_step = integer("level_step", 1, 64 << LOG_FRAC)
        coeffs = d.get("coeffs")
        if not isinstance(coeffs, list) or not 1 <= len(coeffs) <= 1024:
            raise bad("coeffs", "must be a list of 1..1024 bands")
        rows = []
        for b, c in enumerate(coeffs):
            if (not isinstance(c, list) or len(c) != 3
                    or any(type(x) is not int for x in c) or not abs(c[0]) <= MAX_B0
                    or not 0 <= c[2] <= MAX_A2 or not abs(c[1]) < 1 << (COEF_FRAC + 1)):
                raise bad(f"coeffs[{b}]", f"must be 3 integers (b0, a1, a2) with |b0| <= "
                                          f"{MAX_B0}, |a1| < {1 << (COEF_FRAC + 1)} and a2 in "
                                          f"0..{MAX_A2} (docs/audio.md, bounds)")
            if not _stable(c[1], c[2]):
                raise bad(f"coeffs[{b}]", "the band's poles must lie inside the unit circle")
            rows.append(tuple(c))
        centres = d.get("centres_hz", [])
        if (not isinstance(centres, list) or len(centres) not in (0, len(rows))
                or any(not isinstance(f, (int, float)) for f in centres)):
            raise bad("centres_hz", "must be a list of numbers, one per band")
        return cls(rate, hop, steps, levels, level_step, tuple(rows),
                   tuple(float(f) for f in centres))


def _stable(a1: int, a2: int) -> bool:
    """Poles of ``1 + a1 z^-1 + a2 z^-2`` (Q14) strictly inside the unit circle."""
    one = 1 << COEF_FRAC
    return abs(a2) < one and abs(a1) < one + a2


def band_coefficients(sample_rate: int, bands: int, f_lo: float = DEFAULT_F_LO,
                      f_hi: float | None = None) -> tuple[tuple[tuple[int, int, int], ...],
                                                          tuple[float, ...]]:
    """Q14 band-pass coefficients of ``bands`` mel-spaced bands between ``f_lo`` and
    ``f_hi`` (default 0.45 x the sample rate); each band's -3 dB width is the spacing of the
    centres. Returns ``(coeffs, centres_hz)``."""
    f_hi = 0.45 * sample_rate if f_hi is None else f_hi
    m_lo, m_hi = _mel(f_lo), _mel(f_hi)
    mels = [m_lo + (m_hi - m_lo) * b / (bands + 1) for b in range(bands + 2)]
    coeffs, centres = [], []
    for b in range(1, bands + 1):
        fc = _inv_mel(mels[b])
        bw = (_inv_mel(mels[b + 1]) - _inv_mel(mels[b - 1])) / 2
        r = math.exp(-math.pi * bw / sample_rate)
        w = 2 * math.pi * fc / sample_rate
        one = 1 << COEF_FRAC
        b0 = round((1 - r * r) / 2 * one)
        a1 = round(-2 * r * math.cos(w) * one)
        a2 = round(r * r * one)
        coeffs.append((b0, a1, a2))
        centres.append(fc)
    return tuple(coeffs), tuple(centres)


def design_encoding(sample_rate: int, durations_s: Sequence[float], *,
                    bands: int = DEFAULT_BANDS, levels: int = DEFAULT_LEVELS,
                    level_step: int = DEFAULT_LEVEL_STEP, step_ms: float = DEFAULT_STEP_MS,
                    percentile: float = DEFAULT_STEP_PERCENTILE) -> AudioEncoding:
    """The encoding derived from training recordings (docs/audio.md, "Steps and T"):
    ``hop = round(step_ms * sample_rate / 1000)`` samples; ``steps`` = the ``percentile``-th
    percentile of the recordings' lengths in steps (nearest rank, rounded up), at least 1.
    Recordings longer than that are cut at ``steps`` after their first spike."""
    if not durations_s:
        raise DelayhwError("audio: no recordings to derive the encoding from")
    hop = max(1, round(step_ms * sample_rate / 1000.0))
    lengths = sorted(-(-round(d * sample_rate) // hop) for d in durations_s)
    rank = max(1, math.ceil(percentile / 100.0 * len(lengths)))
    steps = max(1, lengths[rank - 1])
    coeffs, centres = band_coefficients(sample_rate, bands)
    enc = AudioEncoding(sample_rate, hop, steps, levels, level_step, coeffs, centres)
    # the bounds a stored encoding must meet hold for a designed one too (a model file
    # holding it must load): checked through the record's own reader
    AudioEncoding.from_json(enc.to_json(), "design_encoding")
    return enc


def band_envelopes(x: np.ndarray, coeffs: Sequence[tuple[int, int, int]],
                   hop: int) -> np.ndarray:
    """Stages 1 and 2: int16 samples ``x`` ``(B, n_samples)`` -> envelopes ``(B, n_samples
    // hop, bands)`` int64, the sum of ``|y|`` of each band over each whole step of ``hop``
    samples (a last partial step is dropped). ``y`` is the band's biquad output; the
    recursion runs in time order, vectorised over recordings and bands."""
    c = np.asarray(coeffs, dtype=np.int64)
    b0, a1, a2 = c[:, 0], c[:, 1], c[:, 2]
    xs = np.asarray(x, dtype=np.int64) << IN_SHIFT
    n_rec, n = xs.shape
    steps = n // hop
    env = np.zeros((n_rec, steps, len(c)), dtype=np.int64)
    y1 = np.zeros((n_rec, len(c)), dtype=np.int64)
    y2 = np.zeros_like(y1)
    x1 = x2 = np.zeros((n_rec, 1), dtype=np.int64)
    rnd = np.int64(1 << (COEF_FRAC - 1))
    for i in range(steps * hop):
        x0 = xs[:, i:i + 1]
        y0 = (b0 * (x0 - x2) - a1 * y1 - a2 * y2 + rnd) >> COEF_FRAC
        env[:, i // hop] += np.abs(y0)
        y2, y1 = y1, y0
        x2, x1 = x1, x0
    return env


def log2_fixed(e: np.ndarray) -> np.ndarray:
    """Piecewise-linear log2 with ``LOG_FRAC`` fractional bits of non-negative integers
    (stage 3): for ``e >= 1`` with leading one at bit ``k``, ``k * 2**F + (((e << F) >> k)
    - 2**F)``; ``0`` maps to ``-1`` (a zero envelope, which never spikes)."""
    e = np.asarray(e, dtype=np.int64)
    if e.size and int(e.min()) < 0:
        raise ValueError("log2_fixed: negative value")
    k = np.zeros(e.shape, dtype=np.int64)            # leading one's bit position (0 for 0, 1)
    rest = e.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = rest >= (np.int64(1) << shift)
        k += np.where(big, shift, 0)
        rest = np.where(big, rest >> shift, rest)
    one = np.int64(1 << LOG_FRAC)
    mant = np.where(k >= LOG_FRAC, e >> np.maximum(k - LOG_FRAC, 0),
                    e << np.maximum(LOG_FRAC - k, 0)) - one
    return np.where(e >= 1, k * one + mant, np.int64(-1))


def levels_to_spikes(lv: np.ndarray, enc: AudioEncoding) -> np.ndarray:
    """Stage 4 for one recording's levels ``lv`` ``(n_steps, bands)``: ``(steps, channels)``
    uint8 thermometer spikes, aligned at the first active step."""
    peak = int(lv.max()) if lv.size else -1
    if peak < 0:        # silence: no spikes at all
        return np.zeros((enc.steps, enc.n_channels), dtype=np.uint8)
    rel = lv - peak
    k = np.arange(enc.levels, dtype=np.int64)
    on = rel[..., None] >= -(k + 1) * enc.level_step     # (n_steps, bands, levels)
    on &= (lv >= 0)[..., None]                           # a zero envelope never spikes
    flat = on.reshape(on.shape[0], -1)
    active = np.flatnonzero(flat.any(axis=1))
    start = int(active[0]) if active.size else 0
    window = flat[start:start + enc.steps]
    out = np.zeros((enc.steps, enc.n_channels), dtype=np.uint8)
    out[:len(window)] = window
    return out


def _int16_samples(r: np.ndarray) -> np.ndarray:
    a = np.asarray(r)
    if a.dtype != np.int16:
        raise DelayhwError(f"audio: samples: must be int16 (got {a.dtype}); read recordings "
                           f"with delayhw.audio_files, which converts them")
    return a.reshape(-1)


def encode(samples: np.ndarray, enc: AudioEncoding) -> np.ndarray:
    """Spikes ``(enc.steps, enc.n_channels)`` uint8 of one mono int16 recording at
    ``enc.sample_rate`` (all four stages)."""
    return encode_many([samples], enc)[0]


def encode_many(recordings: Iterable[np.ndarray], enc: AudioEncoding, *,
                progress: Callable[[int], None] | None = None,
                batch: int = 64) -> np.ndarray:
    """Spikes ``(B, steps, channels)`` of several recordings (same as :func:`encode` on
    each). Recordings are filtered in batches of similar length; ``progress(n)`` is called
    with the number finished after each batch."""
    recs = [_int16_samples(r) for r in recordings]
    out = np.zeros((len(recs), enc.steps, enc.n_channels), dtype=np.uint8)
    # Only the samples up to the window's end can matter, but the window starts at the first
    # active step, which depends on the peak: filter each recording whole.
    order = sorted(range(len(recs)), key=lambda i: len(recs[i]))
    batch = max(1, batch)
    for lo in range(0, len(order), batch):
        idx = order[lo:lo + batch]
        n = max(len(recs[i]) for i in idx)
        n = max(n, 1)
        x = np.zeros((len(idx), n), dtype=np.int16)
        for row, i in enumerate(idx):
            x[row, :len(recs[i])] = recs[i]
        env = band_envelopes(x, enc.coeffs, enc.hop)
        for row, i in enumerate(idx):
            lv = log2_fixed(env[row, :len(recs[i]) // enc.hop])
            out[i] = levels_to_spikes(lv, enc)
        if progress is not None:
            progress(len(idx))
    return out
