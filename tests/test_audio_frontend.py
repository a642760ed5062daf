"""The audio front-end (delayhw.audio) against the plain-loop reference and its promised
behaviour (docs/audio.md, "Front-end arithmetic")."""

import copy
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delayhw import DelayhwError, audio, reference
from delayhw.audio import AudioEncoding, band_coefficients, design_encoding

# Small encodings keep the pure-Python reference fast (it loops per sample and per band).
ENC8 = design_encoding(8000, [0.1], bands=8)                     # hop 80, 10 steps, 4 levels
ENC12 = AudioEncoding(16000, 160, 5, 3, 8, band_coefficients(16000, 12)[0])
# Four levels of 4 octaves each: 16 octaves below the peak, so a zero envelope (level -1)
# is inside the lowest level whenever the peak is below 2**12: the edge of stage 4.
ENC_WIDE = AudioEncoding(8000, 80, 10, 4, 4 << audio.LOG_FRAC, ENC8.coeffs)
ENCODINGS = {"8k-8": ENC8, "16k-12": ENC12, "8k-8-wide": ENC_WIDE}


def _tone(enc, f, seconds, amp=20000.0, phase=0.0):
    n = np.arange(round(seconds * enc.sample_rate))
    return np.round(amp * np.sin(2 * np.pi * f * n / enc.sample_rate + phase)).astype(np.int16)


def _noise(n, amp, seed):
    return np.random.default_rng(seed).integers(-amp, amp + 1, n).astype(np.int16)


def signals(enc):
    """Every kind of input the front-end must get bit-exact, at ``enc``'s rate."""
    rate, hop, c = enc.sample_rate, enc.hop, enc.centres_hz or band_coefficients(
        enc.sample_rate, enc.bands)[1]
    n = round(0.1 * rate)
    t = np.arange(n) / rate
    click = np.zeros(n, np.int16)
    click[n // 3] = 32767
    nclick = np.zeros(n, np.int16)
    nclick[7] = -32768
    train = np.zeros(n, np.int16)
    train[::37] = 30000
    f0, f1 = 100.0, 0.45 * rate
    chirp = np.round(25000 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * t[-1]) * t * t)))
    square = np.where(np.sin(2 * np.pi * c[1] * t) >= 0, 32767, -32768)
    loud = np.clip(np.round(50000 * np.sin(2 * np.pi * c[2] * t)), -32768, 32767)
    late = np.concatenate([np.zeros(hop * 2 + hop // 3, np.int16), _tone(enc, c[0], 0.05)])
    tiny_click = np.zeros(n, np.int16)
    tiny_click[hop + 5] = 1
    return {
        "tone-centre-0": _tone(enc, c[0], 0.1),
        "tone-centre-last": _tone(enc, c[-1], 0.1, amp=12000, phase=1.0),
        "tone-between-2-3": _tone(enc, math.sqrt(c[2] * c[3]), 0.1),
        "chirp": chirp.astype(np.int16),
        "click": click,
        "click-negative-full-scale": nclick,
        "click-train": train,
        "silence": np.zeros(n, np.int16),
        "square-full-scale": square.astype(np.int16),
        "sine-clipped": loud.astype(np.int16),
        "dc": np.full(n, 1000, np.int16),
        "dc-min": np.full(n, -32768, np.int16),
        "dc-step": np.concatenate([np.zeros(n // 2, np.int16), np.full(n // 2, 32767, np.int16)]),
        "empty": np.zeros(0, np.int16),
        "one-sample": np.array([32767], np.int16),
        "hop-minus-1": _noise(hop - 1, 32767, 1),
        "hop": _noise(hop, 32767, 2),
        "hop-plus-1": _noise(hop + 1, 32767, 3),
        "longer-than-window": np.concatenate([_noise(hop * 4, 50, 4),
                                              _tone(enc, c[1], 3 * enc.max_samples() / rate)]),
        "late-onset": late,
        "white-noise": _noise(n, 32767, 20),
        "noise-1-lsb": _noise(n, 1, 5),
        "tiny-click": tiny_click,
    }


CASES = [(e, s) for e in ENCODINGS for s in signals(ENCODINGS[e])]


@pytest.mark.parametrize("enc_name,sig_name", CASES)
def test_encode_matches_reference(enc_name, sig_name):
    enc = ENCODINGS[enc_name]
    x = signals(enc)[sig_name]
    got = audio.encode(x, enc)
    want = np.array(reference.encode_audio(x, enc), dtype=np.uint8).reshape(enc.steps, -1)
    assert got.shape == (enc.steps, enc.n_channels) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("enc_name", list(ENCODINGS))
def test_encode_many_on_a_mixed_batch_matches_encode(enc_name):
    enc = ENCODINGS[enc_name]
    sigs = list(signals(enc).values())
    done = []
    got = audio.encode_many(sigs, enc, batch=4, progress=done.append)   # mixed lengths per batch
    assert got.shape == (len(sigs), enc.steps, enc.n_channels)
    assert sum(done) == len(sigs)
    for i, x in enumerate(sigs):
        np.testing.assert_array_equal(got[i], audio.encode(x, enc), err_msg=f"recording {i}")


# ------------------------------------------------------------------------------ log2


def _log2_definition(e: int) -> int:
    """log2 interpolated linearly between powers of two, floored to 1/2**LOG_FRAC."""
    if e == 0:
        return -1
    k = 0
    while 2 ** (k + 1) <= e:
        k += 1
    return math.floor((k + Fraction(e - 2 ** k, 2 ** k)) * 2 ** audio.LOG_FRAC)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 300), st.integers(0, (1 << 52) - 1)), min_size=1,
                max_size=20))
def test_log2_fixed_is_the_definition(es):
    want = [_log2_definition(e) for e in es]
    assert audio.log2_fixed(np.array(es, dtype=np.int64)).tolist() == want
    assert [reference.log2_level(e) for e in es] == want


@settings(max_examples=200, deadline=None)
@given(st.integers(1, (1 << 51) - 1), st.integers(0, 1 << 20))
def test_log2_fixed_is_monotone_and_an_octave_is_one_unit(e, d):
    lv = audio.log2_fixed(np.array([0, e, e + d, 2 * e], dtype=np.int64)).tolist()
    one = 1 << audio.LOG_FRAC
    assert lv[0] < lv[1] <= lv[2]
    assert lv[3] == lv[1] + one                      # doubling adds exactly one octave
    assert lv[1] <= one * math.log2(e) < lv[1] + one * 0.0861 + 1   # the chord lies below log2


def test_log2_fixed_is_exact_up_to_int64_and_refuses_negatives():
    big = [(1 << 52) - 1, 1 << 52, (1 << 53) + 1, (1 << 62) + 12345, (1 << 63) - 1]
    assert audio.log2_fixed(np.array(big)).tolist() == [_log2_definition(e) for e in big]
    with pytest.raises(ValueError, match="negative"):
        audio.log2_fixed(np.array([5, -1]))


# ------------------------------------------------------------------------------ behaviour


@pytest.mark.parametrize("enc_name", ["8k-8", "16k-12"])
def test_a_tone_at_a_band_centre_makes_that_band_the_loudest(enc_name):
    enc = ENCODINGS[enc_name]
    centres = band_coefficients(enc.sample_rate, enc.bands)[1]
    tones = [_tone(enc, f, 0.1) for f in centres]
    out = audio.encode_many(tones, enc)
    far = np.abs(np.arange(enc.bands)[:, None] - np.arange(enc.bands)) >= 2
    for b in range(enc.bands):
        top = out[b][:, ::enc.levels]                 # channel b' * levels + 0 of every band b'
        assert top[:, b].all(), f"band {b}: its top level does not fire every step"
        assert not top[:, far[b]].any(), f"tone {b}: a band two or more away is at the top"
        # Spikes resolve one level; the levels themselves put band b strictly first.
        lv = audio.log2_fixed(audio.band_envelopes(tones[b][None], enc.coeffs, enc.hop)[0])
        assert (lv.argmax(axis=1) == b).all(), f"tone {b}: band {b} is not the loudest"


def test_a_2x_or_4x_gain_gives_the_same_spikes():
    # Exact except where the recursion's rounding moves a level across a threshold (the
    # filter is linear only up to rounding): allow 1 spike in 1,000 to differ.
    enc = ENC12
    c = band_coefficients(enc.sample_rate, enc.bands)[1]
    base = [_noise(1600, 8000, s) for s in range(4)] + [
        _tone(enc, c[b], 0.1, amp=8000) for b in range(0, 12, 3)] + [
        signals(enc)["chirp"] // 4, signals(enc)["late-onset"] // 4]
    ref = audio.encode_many(base, enc)
    assert ref.any(axis=(1, 2)).all()
    for shift in (1, 2):
        got = audio.encode_many([x << shift for x in base], enc)
        assert (got != ref).sum() <= ref.size // 1000, f"gain 2**{shift}"


@pytest.mark.parametrize("n", [0, 1, 79, 80, 81, 800, 5000])
@pytest.mark.parametrize("enc_name", list(ENCODINGS))
def test_silence_gives_no_spikes(enc_name, n):
    enc = ENCODINGS[enc_name]
    assert not audio.encode(np.zeros(n, np.int16), enc).any()


@pytest.mark.parametrize("enc_name", ["8k-8", "16k-12"])
def test_a_recording_shorter_than_one_step_gives_no_spikes(enc_name):
    enc = ENCODINGS[enc_name]
    out = audio.encode_many([_noise(n, 32767, n) for n in (1, enc.hop // 2, enc.hop - 1)], enc)
    assert not out.any()
    assert audio.encode(_noise(enc.hop, 32767, 0), enc)[0].any()   # one whole step does


@pytest.mark.parametrize("enc_name", ["8k-8", "16k-12"])
def test_leading_silence_of_whole_steps_is_skipped(enc_name):
    enc = ENCODINGS[enc_name]
    sigs = signals(enc)
    for name in ("chirp", "white-noise", "click", "longer-than-window", "noise-1-lsb"):
        x = sigs[name]
        want = audio.encode(x, enc)
        assert want.any(), name
        for m in (1, 3):
            padded = np.concatenate([np.zeros(m * enc.hop, np.int16), x])
            np.testing.assert_array_equal(audio.encode(padded, enc), want, err_msg=f"{name} {m}")


def test_leading_silence_is_skipped_for_a_faint_recording():
    enc = ENC_WIDE
    x = signals(enc)["tiny-click"]
    padded = np.concatenate([np.zeros(2 * enc.hop, np.int16), x])
    np.testing.assert_array_equal(audio.encode(padded, enc), audio.encode(x, enc))


def test_a_recording_longer_than_the_window_is_cut_after_its_first_active_step():
    enc = ENC8
    x = signals(enc)["longer-than-window"]
    assert len(x) // enc.hop > 2 * enc.steps
    out = audio.encode(x, enc)
    assert out.any(axis=1).all()                                 # no padding rows
    # The first 4 steps are faint noise below every level: the window starts at the tone.
    np.testing.assert_array_equal(out, audio.encode(x[4 * enc.hop:], enc))


# ------------------------------------------------------------------------------ records


def _good():
    return ENC8.to_json()


def _set(path, value):
    def edit(d):
        if len(path) == 1:
            d[path[0]] = value
        else:
            d[path[0]][path[1]] = value
        return d
    return edit


BAD = [
    ("not-a-dict", lambda d: [d], "(record)", "must be a JSON object"),
    ("format", _set(["format"], "wav"), "format", "must be 'delayhw-audio' version 1"),
    ("version", _set(["version"], 2), "format", "must be 'delayhw-audio' version 1"),
    ("coef_frac", _set(["coef_frac"], 15), "coef_frac", "must be 14 (this version's"),
    ("in_shift", _set(["in_shift"], 0), "in_shift", "must be 6 (this version's"),
    ("log_frac", _set(["log_frac"], 8), "log_frac", "must be 4 (this version's"),
    ("sample_rate-low", _set(["sample_rate"], 999), "sample_rate", "an integer in 1000..192000"),
    ("sample_rate-float", _set(["sample_rate"], 8000.0), "sample_rate", "an integer in"),
    ("sample_rate-bool", _set(["sample_rate"], True), "sample_rate", "an integer in"),
    ("hop", _set(["hop"], 0), "hop", "must be an integer in 1..8192"),
    ("steps", _set(["steps"], 65537), "steps", "must be an integer in 1..65536"),
    ("levels", _set(["levels"], 65), "levels", "must be an integer in 1..64"),
    ("level_step", _set(["level_step"], 0), "level_step", "must be an integer in 1..1024"),
    ("coeffs-missing", lambda d: {k: v for k, v in d.items() if k != "coeffs"}, "coeffs",
     "must be a list of 1..1024 bands"),
    ("coeffs-empty", _set(["coeffs"], []), "coeffs", "must be a list of 1..1024 bands"),
    ("coeffs-too-many", _set(["coeffs"], [[1, 0, 0]] * 1025), "coeffs", "1..1024 bands"),
    ("coeffs-row-short", _set(["coeffs", 3], [1, 2]), "coeffs[3]", "must be 3 integers"),
    ("coeffs-row-float", _set(["coeffs", 0], [1.0, 0, 0]), "coeffs[0]", "must be 3 integers"),
    ("coeffs-row-big", _set(["coeffs", 7], [8193, 0, 0]), "coeffs[7]", "|b0| <= 8192"),
    ("coeffs-a2-range", _set(["coeffs", 2], [100, 0, 16377]), "coeffs[2]", "a2 in 0..16376"),
    ("coeffs-a2-negative", _set(["coeffs", 2], [100, 0, -1]), "coeffs[2]", "a2 in 0..16376"),
    ("coeffs-unstable-a1", _set(["coeffs", 5], [100, -(16384 + 16376), 16376]),
     "coeffs[5]", "poles must lie inside the unit circle"),
    ("centres-length", _set(["centres_hz"], [100.0]), "centres_hz", "one per band"),
    ("centres-type", _set(["centres_hz", 1], "x"), "centres_hz", "must be a list of numbers"),
]


@pytest.mark.parametrize("case,edit,field,rule", BAD, ids=[b[0] for b in BAD])
def test_from_json_refuses_a_bad_field_by_name(case, edit, field, rule):
    d = edit(copy.deepcopy(_good()))
    with pytest.raises(DelayhwError) as err:
        AudioEncoding.from_json(d, source="m.json")
    msg = str(err.value)
    assert msg.startswith(f"m.json: audio encoding: {field}: "), msg
    assert rule in msg, msg


def test_to_json_round_trips_and_the_edge_of_stability_is_accepted():
    for enc in ENCODINGS.values():
        assert AudioEncoding.from_json(enc.to_json()) == enc
    d = _good()
    d["coeffs"][5] = [100, -(16384 + 16376) + 1, 16376]         # 1 + a1 + a2 = 1/2**14
    assert AudioEncoding.from_json(d).coeffs[5] == (100, -(16384 + 16376) + 1, 16376)


# ------------------------------------------------------------------------------ design range

RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000)
BANDS = (8, 16, 32, 64, 128)
FULL = 1 << (15 + audio.IN_SHIFT)          # |x| <= 2**21 after the input shift


def _l1_norms(b0, a1, a2):
    """(||h||_1, ||g||_1) of H = b0 (1 - z^-2) / A and G = 1 / A (A = 1 + a1 z^-1 + a2 z^-2,
    Q14), summed until the impulse response has decayed below 2**-60 of its start."""
    signal = pytest.importorskip("scipy.signal")
    one = float(1 << audio.COEF_FRAC)
    a = [1.0, a1 / one, a2 / one]
    rho = float(np.abs(np.roots(a)).max())
    n = int(60 * math.log(2) / -math.log(rho)) + 8
    imp = np.zeros(n)
    imp[0] = 1.0
    g = signal.lfilter([1.0], a, imp)
    h = b0 / one * (g - np.concatenate([[0.0, 0.0], g[:-2]]))
    return float(np.abs(h).sum()), float(np.abs(g).sum())


@pytest.mark.parametrize("rate", RATES)
def test_designed_filters_are_stable_and_far_from_int64(rate):
    for bands in BANDS:
        enc = design_encoding(rate, [1.0], bands=bands)
        assert AudioEncoding.from_json(enc.to_json()) == enc      # _stable on every band
        for b, (b0, a1, a2) in enumerate(enc.coeffs):
            poles = np.roots([1 << audio.COEF_FRAC, a1, a2])
            assert np.abs(poles).max() < 1 - 1e-4, (rate, bands, b)
            h1, g1 = _l1_norms(b0, a1, a2)
            # Band-pass of unit peak gain: about 4/pi whatever the width (docs/audio.md).
            assert 1.0 < h1 < 1.4, (rate, bands, b, h1)
            y_max = h1 * FULL + g1 / 2 + 1                       # input + rounding error
            acc_max = (abs(b0) * 2 * FULL + (abs(a1) + abs(a2)) * y_max + (1 << 13))
            assert y_max < 1 << 22 and acc_max < 1 << 40, (rate, bands, b)   # int64: 2**63
            assert enc.hop * y_max < 1 << 36                     # far below the 2**58 bound


@pytest.mark.parametrize("rate,bands", [(8000, 8), (16000, 32), (48000, 128)])
def test_a_full_scale_square_wave_at_each_centre_stays_within_the_bound(rate, bands):
    coeffs, centres = band_coefficients(rate, bands)
    c = np.array(coeffs, dtype=object)
    n = np.arange(2 * rate // 25)                                 # 80 ms: past the rise
    x = np.stack([np.where(np.sin(2 * np.pi * f * n / rate) >= 0, 32767, -32768)
                  for f in centres]).astype(object) * (1 << audio.IN_SHIFT)
    # Band b's recursion on square wave b, in Python integers (no overflow possible).
    y1 = np.zeros(bands, dtype=object)
    y2 = y1.copy()
    x1 = x2 = y1.copy()
    y_max = y1.copy()
    for i in range(len(n)):
        y0 = (c[:, 0] * (x[:, i] - x2) - c[:, 1] * y1 - c[:, 2] * y2 + (1 << 13)) >> 14
        y_max = np.maximum(y_max, np.abs(y0))
        y2, y1, x2, x1 = y1, y0, x1, x[:, i]
    # The fast path on the same input (hop 1: the envelope is |y|) agrees: no int64 wrap.
    env = audio.band_envelopes(x.astype(np.int64) >> audio.IN_SHIFT, coeffs, 1)
    np.testing.assert_array_equal(np.diagonal(env.max(axis=1)), y_max.astype(np.int64))
    for b in range(bands):
        bound = _l1_norms(*coeffs[b])[0] * FULL + _l1_norms(*coeffs[b])[1] / 2 + 1
        assert 0.9 * FULL < y_max[b] <= bound, (b, y_max[b], bound)


def test_every_accepted_record_encodes_full_scale_input():
    d = _good()
    d.update(hop=1 << 16, steps=1, coeffs=[[(1 << 16) - 1, -(1 << 15) + 2, (1 << 14) - 1]],
             centres_hz=[])
    try:
        enc = AudioEncoding.from_json(d)
    except DelayhwError:
        return                                     # refusing such a record is a fix too
    theta = math.acos(((1 << 15) - 2) / (2 * math.sqrt(((1 << 14) - 1) * (1 << 14))))
    n = np.arange(1 << 16)
    x = np.where(np.sin(theta * n) >= 0, 32767, -32768).astype(np.int16)
    try:
        assert audio.encode(x, enc).shape == (1, 4)
    except DelayhwError:
        pass                                       # so is a clear error naming the rule


def test_encode_refuses_samples_that_are_not_int16():
    enc = ENCODINGS[next(iter(ENCODINGS))]
    for bad in (np.zeros(100, dtype=np.int32), np.zeros(100, dtype=np.float32), [0] * 100):
        with pytest.raises(DelayhwError, match="samples: must be int16"):
            audio.encode(bad, enc)


def test_a_length_of_exact_multiples_of_hop_takes_that_many_steps():
    # 239 * 110 samples at 11,025 Hz: float ceil(duration * rate / hop) gave 240 steps
    rate, hop = 11025, 110
    enc = audio.design_encoding(rate, [239 * hop / rate], step_ms=1000 * hop / rate)
    assert (enc.hop, enc.steps) == (hop, 239)
    assert audio.design_encoding(rate, [(239 * hop + 1) / rate],
                                 step_ms=1000 * hop / rate).steps == 240


def test_design_encoding_refuses_what_a_stored_record_may_not_hold():
    with pytest.raises(DelayhwError, match="hop: must be an integer in 1..8192"):
        audio.design_encoding(48000, [1.0], step_ms=200)
