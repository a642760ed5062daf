"""Encode a UCR/UEA ``.ts`` classification pair as delayhw input files, the way
``../shared/data`` was encoded (its README): per dimension, each series z-normalised,
subsampled by ``--stride``, compared with K = 8 levels (the 5%..95% quantiles of all training
values of that dimension); channel ``16*dim + k`` spikes when the series crosses level k
upwards, ``16*dim + 8 + k`` downwards. Shorter series (unequal lengths) end early: no spikes
after their end. Labels are class indices in sorted order.

    python bench/ucr_encode.py NAME_TRAIN.ts NAME_TEST.ts --stride S --out DIR/name

writes ``DIR/name_train.npz`` and ``DIR/name_test.npz``. For checking the trainer's defaults
on tasks outside ``../shared/data`` (docs/train.md); the ``.ts`` files are not shipped here
(the sktime 1.2.0 wheel bundles several under ``sktime/datasets/data``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from delayhw.formats import save_input

LEVELS = 8


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """Series (each ``(dims, length)``) and labels of a ``.ts`` file."""
    series, labels, in_data = [], [], False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")
        rows = [np.array([float(v) for v in d.split(",")]) for d in dims]
        length = min(len(r) for r in rows)
        series.append(np.stack([r[:length] for r in rows]))
        labels.append(label.strip())
    return series, labels


def znorm(series: np.ndarray) -> np.ndarray:
    """Each dimension of a ``(dims, length)`` series z-normalised."""
    return (series - series.mean(1, keepdims=True)) / (series.std(1, keepdims=True) + 1e-12)


def encode(series: list[np.ndarray], levels: np.ndarray, stride: int, steps: int) -> np.ndarray:
    """Spikes ``(B, steps, dims * 2 * LEVELS)`` uint8 of z-normalised, subsampled series."""
    dims = series[0].shape[0]
    out = np.zeros((len(series), steps, dims * 2 * LEVELS), np.uint8)
    for b, s in enumerate(series):
        z = znorm(s)[:, ::stride]
        for d in range(dims):
            prev, cur = z[d, :-1, None], z[d, 1:, None]
            up = (prev < levels[d]) & (cur >= levels[d])
            down = (prev >= levels[d]) & (cur < levels[d])
            n = min(up.shape[0], steps - 1)
            out[b, 1:n + 1, 16 * d:16 * d + LEVELS] = up[:n]
            out[b, 1:n + 1, 16 * d + LEVELS:16 * d + 2 * LEVELS] = down[:n]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train", type=Path)
    ap.add_argument("test", type=Path)
    ap.add_argument("--stride", type=int, default=1)
    ap.add_argument("--out", required=True, help="path prefix: writes PREFIX_{train,test}.npz")
    args = ap.parse_args()
    (tr, ytr), (te, yte) = read_ts(args.train), read_ts(args.test)
    classes = sorted(set(ytr))
    dims = tr[0].shape[0]
    pooled = [np.concatenate([znorm(s)[d, ::args.stride] for s in tr]) for d in range(dims)]
    levels = np.stack([np.quantile(p, np.linspace(0.05, 0.95, LEVELS)) for p in pooled])
    steps = max(s[:, ::args.stride].shape[1] for s in tr + te)
    for name, series, labels in (("train", tr, ytr), ("test", te, yte)):
        spikes = encode(series, levels, args.stride, steps)
        y = np.array([classes.index(v) for v in labels], np.int64)
        path = Path(f"{args.out}_{name}.npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_input(path, spikes, y)      # checked as every delayhw input file
        print(f"{path}: {spikes.shape[0]} x {steps} steps x {spikes.shape[2]} channels, "
              f"{len(classes)} classes, rate {spikes.mean():.3f}")


if __name__ == "__main__":
    main()
