"""DESIGN.md section 3 written out as plain loops: the oracle the golden model is tested against.

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
