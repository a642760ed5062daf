"""Screening of audio front-end settings (docs/audio.md, "Choosing the front-end").

For each candidate encoding (``design_encoding`` keyword arguments as JSON), encode all of
``../shared/data/fsdd`` and fit a logistic regression on the spike counts in 8 time bins per
channel (cheap and deterministic): accuracy on the official test split, and
leave-one-speaker-out (train on 3 speakers' recordings, test on all of the 4th's). Writes
``bench/results/audio_screen.json``.

    python bench/audio_screen.py                      # the candidates of docs/audio.md
    python bench/audio_screen.py '{"levels": 6}' ...  # others
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

FSDD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fsdd"
CANDIDATES = [{"level_step": 16}, {"levels": 2, "level_step": 16}, {"level_step": 8},
              {"levels": 3, "level_step": 32}, {"level_step": 24}, {"level_step": 32},
              {"levels": 6, "level_step": 16}, {"levels": 6, "level_step": 24},
              {"levels": 8, "level_step": 16}, {"bands": 16, "level_step": 16},
              {"bands": 24, "levels": 6, "level_step": 16}, {"bands": 48, "level_step": 24},
              {"bands": 64, "levels": 2, "level_step": 16}]


def load(split: str):
    import soundfile as sf
    files = sorted((FSDD / split).glob("*/*.wav"))
    recs = [sf.read(f, dtype="int16")[0] for f in files]
    labels = np.array([int(f.parent.name) for f in files])
    speakers = np.array([f.name.split("_")[0] for f in files])
    return recs, labels, speakers


def time_bins(spikes: np.ndarray, bins: int = 8) -> np.ndarray:
    b, t, c = spikes.shape
    t -= t % bins
    return spikes[:, :t].reshape(b, bins, t // bins, c).mean(axis=2).reshape(b, -1)


def screen(kw: dict, train, test) -> dict:
    from sklearn.linear_model import LogisticRegression

    from delayhw import audio
    (tr, ytr, s_tr), (te, yte, s_te) = train, test
    t0 = time.perf_counter()
    enc = audio.design_encoding(8000, [len(r) / 8000 for r in tr], **kw)
    x_tr, x_te = audio.encode_many(tr, enc), audio.encode_many(te, enc)
    f_tr, f_te = time_bins(x_tr), time_bins(x_te)

    def fit(x, y):
        return LogisticRegression(C=0.5, max_iter=300).fit(x, y)
    test_acc = fit(f_tr, ytr).score(f_te, yte)
    f, y, s = np.concatenate([f_tr, f_te]), np.concatenate([ytr, yte]), np.concatenate([s_tr, s_te])
    loso = {sp: fit(f[s != sp], y[s != sp]).score(f[s == sp], y[s == sp])
            for sp in sorted(set(s))}
    return {"encoding": kw, "channels": enc.n_channels, "steps": enc.steps,
            "activity": float(x_tr.mean()), "test": 100 * test_acc,
            "loso_mean": 100 * float(np.mean(list(loso.values()))),
            "loso": {k: 100 * v for k, v in loso.items()},
            "seconds": time.perf_counter() - t0}


def main() -> None:
    import threadpoolctl
    threadpoolctl.threadpool_limits(1)
    candidates = [json.loads(a) for a in sys.argv[1:]] or CANDIDATES
    train, test = load("train"), load("test")
    rows = []
    for kw in candidates:
        rows.append(screen(kw, train, test))
        r = rows[-1]
        print(f"{json.dumps(kw):45s} {r['channels']:4d} ch  activity {100 * r['activity']:5.1f}%  "
              f"test {r['test']:5.1f}  LOSO {r['loso_mean']:5.1f}", flush=True)
    write_result("audio_screen", {"readout": "logistic regression (C 0.5) on spike counts in "
                                             "8 time bins per channel", "rows": rows})


if __name__ == "__main__":
    main()
