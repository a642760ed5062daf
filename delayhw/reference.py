"""docs/design.md section 3 written out as plain loops: the oracle the golden model is tested
against.

Deliberately naive (pure Python integers, one loop per index of the equations) and shares no
code with :mod:`delayhw.golden`. Slow: for tests and the per-event baseline in bench/.
"""

from __future__ import annotations

import numpy as np

from .spec import LayerKind, Model, Reset


def run(model: Model, spikes: np.ndarray) -> tuple[list[list[int]], list[list[list[list[int]]]]]:
    """Return ``(scores[b][j], spikes[n][b][t][j])`` as Python lists, for every sample ``b``
    and every lif layer ``n``."""
    all_scores = []
    all_spikes: list[list] = [[] for layer in model.layers if layer.kind is LayerKind.LIF]
    for b in range(len(spikes)):
        scores, trains = _run_sample(model, [[int(x) for x in row] for row in spikes[b]])
        all_scores.append(scores)
        for n, train in enumerate(trains):
            all_spikes[n].append(train)
    return all_scores, all_spikes


def _run_sample(model: Model, inp: list[list[int]]) -> tuple[list[int], list]:
    steps = len(inp)
    # s[k][t][j]: spike of unit j of layer k at step t (filled in as we go); k = -1 is input.
    s = {-1: inp}
    for k, layer in enumerate(model.layers):
        s[k] = [[0] * layer.size for _ in range(steps)]
    v = [[0] * layer.size for layer in model.layers]
    scores = [0] * model.layers[-1].size

    def spike(k: int, i: int, t: int) -> int:
        return s[k][t][i] if t >= 0 else 0   # spikes before t = 0 are 0

    for t in range(steps):
        for k, layer in enumerate(model.layers):
            vmin = -(2 ** (layer.v_bits - 1))
            vmax = 2 ** (layer.v_bits - 1) - 1
            for j in range(layer.size):
                current = 0
                for i in range(layer.n_in):
                    current += int(layer.w[j][i]) * spike(k - 1, i, t - int(layer.d[j][i]))
                if layer.recurrent:
                    for i in range(layer.size):
                        current += int(layer.w_rec[j][i]) * spike(k, i, t - int(layer.d_rec[j][i]))
                bias = int(layer.bias[j]) if layer.has_bias else 0
                decayed = (v[k][j] * layer.beta + 2 ** (layer.f_bits - 1)) // 2 ** layer.f_bits
                u = decayed + current + bias
                u = min(max(u, vmin), vmax)
                if layer.kind is LayerKind.LIF:
                    if u >= layer.threshold:
                        s[k][t][j] = 1
                        v[k][j] = u - layer.threshold if layer.reset == Reset.SUBTRACT else 0
                    else:
                        v[k][j] = u
                else:
                    v[k][j] = u
                    scores[j] += u
    trains = [s[k] for k, layer in enumerate(model.layers) if layer.kind is LayerKind.LIF]
    return scores, trains


# ------------------------------------------------------------------------ audio front-end
#
# docs/audio.md, "Front-end arithmetic", written out per sample and per band from its
# equations. Only the record and its fixed-point constants come from delayhw.audio.


def encode_audio(samples, enc) -> list[list[int]]:
    """Spikes ``[t][b * levels + k]`` (``enc.steps`` rows of ``enc.bands * enc.levels``) of
    one mono recording of int16 samples under the :class:`delayhw.audio.AudioEncoding`
    ``enc``, as Python lists."""
    from .audio import COEF_FRAC, IN_SHIFT

    x = [int(s) for s in samples]
    for s in x:
        if not -2 ** 15 <= s < 2 ** 15:
            raise ValueError(f"encode_audio: sample {s} is not an int16")
    hop, bands, levels = enc.hop, len(enc.coeffs), enc.levels
    n_steps = len(x) // hop                       # whole steps only
    # Stages 1 and 2: env[t][b] = sum of |y_b[n]| over the samples n of step t.
    env = [[0] * bands for _ in range(n_steps)]
    for b in range(bands):
        b0, a1, a2 = (int(c) for c in enc.coeffs[b])
        x1 = x2 = 0                               # x[n-1], x[n-2] (0 before the recording)
        y1 = y2 = 0                               # y[n-1], y[n-2]
        for n in range(n_steps * hop):
            x0 = x[n] * 2 ** IN_SHIFT
            acc = b0 * (x0 - x2) - a1 * y1 - a2 * y2 + 2 ** (COEF_FRAC - 1)
            y0 = acc // 2 ** COEF_FRAC            # floor division: round half up
            env[n // hop][b] += abs(y0)
            x2, x1 = x1, x0
            y2, y1 = y1, y0
    # Stage 3: levels, and the peak over every band and step.
    level = [[log2_level(env[t][b]) for b in range(bands)] for t in range(n_steps)]
    peak = -1
    for t in range(n_steps):
        for b in range(bands):
            peak = max(peak, level[t][b])
    out = [[0] * (bands * levels) for _ in range(enc.steps)]
    if peak < 0:                                  # no step with any energy: no spikes
        return out
    # Stage 4: thermometer channels, then the window from the first step with a spike.
    on = [[0] * (bands * levels) for _ in range(n_steps)]
    for t in range(n_steps):
        for b in range(bands):
            for k in range(levels):
                if level[t][b] >= 0 and level[t][b] - peak >= -(k + 1) * enc.level_step:
                    on[t][b * levels + k] = 1
    start = 0
    while start < n_steps and not any(on[start]):
        start += 1
    for t in range(enc.steps):
        if start + t < n_steps:
            out[t] = list(on[start + t])
    return out


def log2_level(e: int) -> int:
    """The front-end's fixed-point log2 of one envelope ``e >= 0`` (docs/audio.md): with
    ``2**k <= e < 2**(k+1)``, ``k * 2**F + floor((e - 2**k) * 2**F / 2**k)``; ``-1`` for 0."""
    from .audio import LOG_FRAC

    if e < 0:
        raise ValueError(f"log2_level: negative envelope {e}")
    if e == 0:
        return -1
    k = e.bit_length() - 1
    return k * 2 ** LOG_FRAC + (e - 2 ** k) * 2 ** LOG_FRAC // 2 ** k
