"""Labelled spike data for training: spikes ``(B, T, C)`` uint8 0/1 and labels ``(B,)``.

Sources (docs/design.md section 7):

- :func:`synthetic` — a task only delays can solve: every class is a permutation of the same
  spike times over the channels, so every sample has exactly one spike per channel at the
  same set of relative times; classes differ only in *which channel fires when*.
- :func:`digits` — scikit-learn's 8x8 digits, latency coded (brighter pixel, earlier spike).
- :func:`read_spike_h5` / :func:`shd` — the SHD/SSC HDF5 layout (``spikes/times`` in seconds,
  ``spikes/units``, ``labels``), binned into ``steps`` bins.
- :func:`user_file` — a delayhw input file (docs/design.md section 4) that has ``labels``.
- :func:`train_test_files` — a user's own training file and test file (the test file only
  reports; a validation split, if any, comes out of the training file).
- :func:`audio_folders` — recordings in folders of label folders (docs/audio_files.md),
  encoded with the encoding derived from the training recordings only.

Every function is deterministic in its ``seed``; bad input raises :class:`DelayhwError`
naming the file, the field and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from delayhw.errors import DelayhwError
from delayhw.formats import load_input

__all__ = ["SpikeData", "Splits", "AudioInfo", "synthetic", "digits", "read_spike_h5", "shd",
           "user_file", "train_test_files", "audio_folders", "split"]


@dataclass(frozen=True, eq=False)
class SpikeData:
    """``spikes`` ``(B, T, C)`` uint8 0/1 and ``labels`` ``(B,)`` int64."""

    spikes: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        assert self.spikes.ndim == 3 and self.labels.shape == self.spikes.shape[:1]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray) -> "SpikeData":
        return SpikeData(self.spikes[idx], self.labels[idx])


@dataclass(frozen=True)
class AudioInfo:
    """How recordings became a task's spikes: the encoding (a
    :class:`delayhw.audio.AudioEncoding`), the class names the labels index, and the test
    set's files."""

    encoding: Any
    classes: tuple[str, ...]
    test_files: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Splits:
    """Train / validation / test data of one task and how it was encoded (``audio``: for
    recordings)."""

    name: str
    train: SpikeData
    val: SpikeData
    test: SpikeData
    n_classes: int
    info: dict[str, Any] = field(default_factory=dict)
    audio: AudioInfo | None = None

    @property
    def n_inputs(self) -> int:
        return int(self.train.spikes.shape[2])

    @property
    def steps(self) -> int:
        return int(self.train.spikes.shape[1])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "n_inputs": self.n_inputs, "n_classes": self.n_classes,
                "steps": self.steps, "train": len(self.train), "val": len(self.val),
                "test": len(self.test), **self.info}


def split(data: SpikeData, seed: int, val: float, test: float) -> tuple[SpikeData, ...]:
    """Shuffle (seeded) and cut into train / val / test fractions."""
    n = len(data)
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test)), int(round(n * val))
    return (data.subset(order[n_test + n_val:]), data.subset(order[n_test:n_test + n_val]),
            data.subset(order[:n_test]))


# ----------------------------------------------------------------------------- synthetic


def synthetic(seed: int = 0, n_train: int = 1024, n_val: int = 256, n_test: int = 256,
              n_inputs: int = 8, n_classes: int = 4, steps: int = 32, spacing: int = 2,
              noise: float = 0.005, pattern_seed: int = 1234) -> Splits:
    """Temporal-order task. Class ``c`` is a permutation ``o_c`` of the offsets
    ``0, spacing, ..., (n_inputs-1)*spacing``: channel ``i`` fires once at ``t0 + o_c[i]``
    (``t0`` uniform), plus Bernoulli(``noise``) background spikes. Spike counts and the set of
    spike times are the same for every class, so only delays that realign the channels can
    tell them apart. Needs ``d_max >= (n_inputs-1) * spacing`` to be solvable."""
    span = (n_inputs - 1) * spacing
    if steps < span + 4:
        raise DelayhwError(f"synthetic: steps: must be >= span + 4 = {span + 4}, got {steps}")
    prng = np.random.default_rng(pattern_seed)
    base = np.arange(n_inputs) * spacing
    patterns = np.stack([prng.permutation(base) for _ in range(n_classes)])

    def make(n: int, rng: np.random.Generator) -> SpikeData:
        labels = rng.integers(0, n_classes, n)
        t0 = rng.integers(0, steps - span - 3, n)
        spikes = (rng.random((n, steps, n_inputs)) < noise).astype(np.uint8)
        times = t0[:, None] + patterns[labels]                           # (n, n_inputs)
        spikes[np.arange(n)[:, None], times, np.arange(n_inputs)[None, :]] = 1
        return SpikeData(spikes, labels.astype(np.int64))

    rng = np.random.default_rng(seed)
    return Splits("synthetic", make(n_train, rng), make(n_val, rng), make(n_test, rng),
                  n_classes, {"encoding": "one spike per channel at t0 + permuted offset",
                              "spacing": spacing, "span": int(span), "noise": noise,
                              "patterns": patterns.tolist()})


# ----------------------------------------------------------------------------- digits


def latency_code(values: np.ndarray, vmax: float, window: int, steps: int) -> np.ndarray:
    """``values`` ``(B, C)`` in ``0..vmax`` -> spikes ``(B, steps, C)``: a value ``x > 0``
    fires once at ``round((1 - x / vmax) * (window - 1))``; 0 never fires."""
    values = np.asarray(values, dtype=np.float64)
    t = np.rint((1.0 - values / vmax) * (window - 1)).astype(np.int64)
    spikes = np.zeros((values.shape[0], steps, values.shape[1]), dtype=np.uint8)
    b, c = np.nonzero(values > 0)
    spikes[b, t[b, c], c] = 1
    return spikes


def digits(seed: int = 0, window: int = 12, steps: int = 24, val: float = 0.15,
           test: float = 0.15) -> Splits:
    """scikit-learn digits (1797 images of 8x8 pixels, 0..16, 10 classes): 64 channels, one
    spike per nonzero pixel, latency coded within the first ``window`` steps."""
    from sklearn.datasets import load_digits

    d = load_digits()
    spikes = latency_code(d.data, 16.0, window, steps)
    train, va, te = split(SpikeData(spikes, d.target.astype(np.int64)), seed, val, test)
    return Splits("digits", train, va, te, 10,
                  {"encoding": f"latency: pixel x>0 fires at round((1-x/16)*{window - 1})",
                   "window": window})


# ----------------------------------------------------------------------------- SHD / SSC


def read_spike_h5(path: str | Path, steps: int = 100, duration: float = 1.0, n_units: int = 700,
                  pool: int = 1, limit: int | None = None) -> SpikeData:
    """Read an SHD/SSC-layout HDF5 file: ``spikes/times`` (per sample, seconds),
    ``spikes/units`` (per sample, 0..n_units-1) and ``labels``. Spikes at ``time <
    duration`` go into bin ``floor(time / duration * steps)`` (later ones are dropped);
    channels are summed in groups of ``pool`` and the result clipped to 0/1."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DelayhwError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DelayhwError(f"{path}: not an HDF5 file ({exc})") from None
    with f:
        for name in ("spikes/times", "spikes/units", "labels"):
            if name not in f:
                raise DelayhwError(f"{path}: {name}: missing dataset (the SHD/SSC layout has "
                                   f"spikes/times, spikes/units and labels)")
        times, units, labels = f["spikes/times"], f["spikes/units"], np.asarray(f["labels"])
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DelayhwError(f"{path}: labels: must be a 1-D integer array, got "
                               f"{labels.dtype} {labels.shape}")
        if not len(times) == len(units) == len(labels):
            raise DelayhwError(f"{path}: spikes/times, spikes/units, labels: must have the same "
                               f"length, got {len(times)}, {len(units)}, {len(labels)}")
        n = len(labels) if limit is None else min(limit, len(labels))
        channels = -(-n_units // pool)
        spikes = np.zeros((n, steps, channels), dtype=np.uint8)
        for b in range(n):
            t, u = np.asarray(times[b], dtype=np.float64), np.asarray(units[b])
            if t.shape != u.shape:
                raise DelayhwError(f"{path}: spikes/units[{b}]: has {u.size} entries, "
                                   f"spikes/times[{b}] has {t.size}")
            if t.size and (t.min() < 0 or not np.isfinite(t).all()):
                raise DelayhwError(f"{path}: spikes/times[{b}]: times must be finite and >= 0")
            if u.size and (u.min() < 0 or u.max() >= n_units):
                raise DelayhwError(f"{path}: spikes/units[{b}]: units must be in "
                                   f"0..{n_units - 1}, got {u.min()}..{u.max()}")
            keep = t < duration
            bins = (t[keep] / duration * steps).astype(np.int64)
            spikes[b, bins, u[keep].astype(np.int64) // pool] = 1
    if labels.size and labels.min() < 0:
        raise DelayhwError(f"{path}: labels: must be >= 0")
    return SpikeData(spikes, labels[:n].astype(np.int64))


def shd(data_dir: str | Path, name: str = "shd", seed: int = 0, steps: int = 100,
        duration: float = 1.0, pool: int = 5, val: float = 0.1,
        limit: int | None = None) -> Splits:
    """SHD (20 classes) or SSC (35 classes) from ``DIR/{name}_train.h5``, ``{name}_test.h5``
    and, if present, ``{name}_valid.h5`` (else ``val`` of the training set is held out)."""
    data_dir = Path(data_dir)
    if name not in ("shd", "ssc"):
        raise DelayhwError(f"task: must be 'shd' or 'ssc', got {name!r}")
    read = dict(steps=steps, duration=duration, pool=pool, limit=limit)
    train = read_spike_h5(data_dir / f"{name}_train.h5", **read)
    test = read_spike_h5(data_dir / f"{name}_test.h5", **read)
    valid = data_dir / f"{name}_valid.h5"
    if valid.is_file():
        va = read_spike_h5(valid, **read)
    else:
        train, va, _ = split(train, seed, val, 0.0)
    n_classes = int(max(train.labels.max(), test.labels.max(), va.labels.max())) + 1
    return Splits(name, train, va, test, n_classes,
                  {"encoding": f"{duration} s in {steps} bins, 700 channels pooled by {pool}",
                   "data_dir": str(data_dir)})


# ----------------------------------------------------------------------------- user files


def _labelled(path: Path) -> SpikeData:
    inputs = load_input(path)
    if inputs.labels is None:
        raise DelayhwError(f"{path}: labels: missing array; training needs labels (B,) next to "
                           f"spikes (B, T, n_inputs)")
    return SpikeData(inputs.spikes, inputs.labels)


def class_count(path: Path, labels: np.ndarray) -> int:
    """``max label + 1``: at least 2, at most the largest readout (LIMITS["size"]), checked
    before anything is sized by it."""
    from delayhw.spec import LIMITS

    top = int(labels.max())
    if top < 1:
        raise DelayhwError(f"{path}: labels: need at least 2 classes, all labels are 0")
    if top + 1 > LIMITS["size"][1]:
        raise DelayhwError(f"{path}: labels: largest label {top} would make {top + 1} classes; "
                           f"at most {LIMITS['size'][1]} are supported (labels are class "
                           f"numbers 0..classes-1)")
    return top + 1


def user_file(path: str | Path, seed: int = 0, val: float = 0.15, test: float = 0.15) -> Splits:
    """A delayhw input file with ``labels``; split (seeded) into train/val/test."""
    path = Path(path)
    data = _labelled(path)
    if len(data) < 3:
        raise DelayhwError(f"{path}: labels: need at least 3 samples to split into "
                           f"train/validation/test, got {len(data)}")
    n_classes = class_count(path, data.labels)
    train, va, te = split(data, seed, val, test)
    if len(train) == 0:
        raise DelayhwError(f"{path}: labels: {len(data)} samples leave none for training "
                           f"after a {val:g} validation and {test:g} test split")
    return Splits(path.stem, train, va, te, n_classes,
                  {"encoding": "user input file", "file": str(path),
                   "split": f"train/val/test {1 - val - test:g}/{val:g}/{test:g} of the file"})


def train_test_files(train_path: str | Path, test_path: str | Path, seed: int = 0,
                     val: float = 0.0) -> Splits:
    """A user's training file and test file (delayhw input files with ``labels``).

    All of the training file trains, except a seeded fraction ``val`` held out for validation
    (``0``: no validation set). The test file is only reported on. Rules, checked against
    each other (:class:`DelayhwError` naming the file and field): both have labels; spikes
    have the same number of channels and of steps; the training file has at least 2 classes
    and every class ``0..max`` at least once; every test label is a class of the training
    file. ``n_classes`` is the training file's ``max label + 1``."""
    train_path, test_path = Path(train_path), Path(test_path)
    train, test = _labelled(train_path), _labelled(test_path)
    (_, t_tr, c_tr), (_, t_te, c_te) = train.spikes.shape, test.spikes.shape
    if c_te != c_tr:
        raise DelayhwError(f"{test_path}: spikes: has {c_te} channels, the training file "
                           f"{train_path} has {c_tr}; both files must have the same channels")
    if t_te != t_tr:
        raise DelayhwError(f"{test_path}: spikes: has {t_te} steps per sample, the training "
                           f"file {train_path} has {t_tr}; both files must have the same steps")
    n_classes = class_count(train_path, train.labels)
    missing = sorted(set(range(n_classes)) - set(train.labels.tolist()))
    if missing:
        raise DelayhwError(f"{train_path}: labels: class {missing[0]} never occurs; classes "
                           f"must be 0..{n_classes - 1} with every class present")
    unknown = sorted(set(test.labels.tolist()) - set(range(n_classes)))
    if unknown:
        raise DelayhwError(f"{test_path}: labels: class {unknown[0]} does not occur in the "
                           f"training file {train_path} (classes 0..{n_classes - 1})")
    if not 0.0 <= val < 1.0:
        raise DelayhwError(f"train: val_fraction (--val-fraction): must be in [0, 1), got {val!r}")
    tr, va, _ = split(train, seed, val, 0.0)
    if val > 0 and (len(va) == 0 or len(tr) == 0):
        raise DelayhwError(f"{train_path}: labels: {len(train)} samples cannot be split into "
                           f"training and a {val:g} validation fraction")
    return Splits(train_path.stem, tr, va, test, n_classes,
                  {"encoding": "user input files", "file": str(train_path),
                   "test_file": str(test_path),
                   "split": f"all of the training file trains, {val:g} held out for "
                            f"validation; the test file only reports"})


# ----------------------------------------------------------------------------- recordings


def _encode_recordings(recordings, classes, enc, reporter, what: str):
    from delayhw.audio_files import encode_files
    if reporter is None:
        return encode_files(recordings, classes, enc)
    with reporter.phase(f"encoding {what} recordings", len(recordings)) as r:
        return encode_files(recordings, classes, enc, progress=r.advance)


def audio_folders(train_dir: str | Path, test_dir: str | Path | None = None, seed: int = 0,
                  val: float = 0.0, test: float = 0.15, reporter: Any = None) -> Splits:
    """Recordings in a folder of label folders (``train_dir/<class>/<file>.wav``), and
    optionally a test folder laid out the same way. Class names are the training folder's
    label folders, sorted (at least 2); the test folder's label folders must be among them.
    The encoding is derived from the training recordings only
    (:func:`delayhw.audio_files.derive_encoding`) and encodes both folders. With
    ``test_dir``, all of the training folder trains except a seeded fraction ``val`` held
    out for validation, and the test folder only reports (as :func:`train_test_files`);
    without it, the training folder is split (seeded) into ``1 - val - test`` / ``val`` /
    ``test``. ``reporter`` (a :class:`.loop.Reporter`) shows the encoding's progress."""
    from delayhw.audio_files import check_encoding_memory, derive_encoding, scan

    train_dir = Path(train_dir)
    recordings, classes = scan([train_dir])
    if len(classes) < 2:
        raise DelayhwError(f"{train_dir}: training needs at least 2 label folders (classes), "
                           f"got {len(classes)}")
    enc = derive_encoding(recordings)
    check_encoding_memory(recordings, enc)
    if test_dir is not None:
        test_recs, _ = scan([test_dir], classes,
                            known_from=f"the training folder {train_dir}")
        check_encoding_memory(test_recs, enc)
    data = _encode_recordings(recordings, classes, enc, reporter, "training")
    full = SpikeData(data.spikes, data.labels)
    where = (f"{len(classes)} classes ({', '.join(classes[:12])}"
             f"{', ...' if len(classes) > 12 else ''}); encoding: {enc.bands} bands x "
             f"{enc.levels} levels at {enc.sample_rate} Hz, {enc.steps} steps of {enc.hop} "
             f"samples ({enc.step_ms:g} ms)")
    if test_dir is not None:
        tested = _encode_recordings(test_recs, classes, enc, reporter, "test")
        tr, va, _ = split(full, seed, val, 0.0)
        if val > 0 and (len(va) == 0 or len(tr) == 0):
            raise DelayhwError(f"{train_dir}: {len(full)} recordings cannot be split into "
                               f"training and a {val:g} validation fraction")
        te = SpikeData(tested.spikes, tested.labels)
        test_files = tested.files
        how = (f"all of the training folder trains, {val:g} held out for validation; the "
               f"test folder only reports")
    else:
        order = np.random.default_rng(seed).permutation(len(full))
        n_test, n_val = int(round(len(full) * test)), int(round(len(full) * val))
        tr, va, te = (full.subset(order[n_test + n_val:]),
                      full.subset(order[n_test:n_test + n_val]), full.subset(order[:n_test]))
        test_files = tuple(data.files[i] for i in order[:n_test])
        how = f"train/val/test {1 - val - test:g}/{val:g}/{test:g} of the folder"
        if len(tr) == 0 or len(te) == 0:
            raise DelayhwError(f"{train_dir}: {len(full)} recordings leave none for training "
                               f"or testing after a {val:g} validation and {test:g} test "
                               f"split")
    return Splits(train_dir.name, tr, va, te, len(classes),
                  {"encoding": f"audio front-end (docs/audio.md): {where}",
                   "folder": str(train_dir), "test_folder": str(test_dir), "split": how},
                  AudioInfo(enc, tuple(classes), tuple(test_files)))
