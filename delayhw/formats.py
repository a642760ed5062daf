"""Model, input and result files (DESIGN.md section 4). Always ``allow_pickle=False``.

Loaders validate fully and raise :class:`~delayhw.DelayhwError` naming the file, the field
and the rule. Savers validate before writing and write atomically (temp file + rename), so a
failed save never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import DelayhwError
from .spec import Layer, Model

__all__ = ["load_model", "save_model", "load_input", "save_input", "Inputs", "Result",
           "load_result", "read_npz", "write_npz"]

FORMAT = "delayhw-model"
VERSION = 1
_TOP_KEYS = {"format", "version", "n_inputs", "layers"}
_LAYER_KEYS = {"name", "kind", "size", "w_bits", "v_bits", "f_bits", "beta", "d_max",
               "recurrent", "bias"}
_LIF_KEYS = {"threshold", "reset"}


# ----------------------------------------------------------------------------- raw npz I/O


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read eagerly with ``allow_pickle=False``."""
    path = Path(path)
    if not path.is_file():
        raise DelayhwError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise DelayhwError(f"{path}: not an npz archive (expected a file written by numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DelayhwError(f"{path}: holds a pickled object array; only plain numeric and "
                               f"string arrays are accepted (pickles can run code)") from None
        raise DelayhwError(f"{path}: corrupt npz archive ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, KeyError) as exc:
        raise DelayhwError(f"{path}: truncated or corrupt npz archive ({type(exc).__name__}: "
                           f"{exc})") from None


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` atomically as a compressed npz (exact name, no '.npz'
    added). The bytes depend only on the arrays (fixed zip timestamps), so equal results
    give identical files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes it 0600; files are for sharing
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- model files


def _parse_meta(path: Path, raw: np.ndarray | None) -> dict[str, Any]:
    if raw is None:
        raise DelayhwError(f"{path}: meta: missing (a model file needs a 'meta' JSON string)")
    if raw.shape != () or raw.dtype.kind not in "US":
        raise DelayhwError(f"{path}: meta: must be a 0-d string array holding JSON, "
                           f"got dtype {raw.dtype} shape {raw.shape}")
    text = raw.item()
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DelayhwError(f"{path}: meta: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise DelayhwError(f"{path}: meta: must be a JSON object")
    if meta.get("format") != FORMAT:
        raise DelayhwError(f"{path}: meta.format: must be {FORMAT!r}, got {meta.get('format')!r}")
    if meta.get("version") != VERSION:
        raise DelayhwError(f"{path}: meta.version: this delayhw reads version {VERSION}, "
                           f"got {meta.get('version')!r}")
    missing = _TOP_KEYS - meta.keys()
    extra = meta.keys() - _TOP_KEYS - {"train"}
    if missing:
        raise DelayhwError(f"{path}: meta: missing key(s) {sorted(missing)}")
    if extra:
        raise DelayhwError(f"{path}: meta: unknown key(s) {sorted(extra)} (trainer extras belong "
                           f"under 'train')")
    if not isinstance(meta["layers"], list) or not meta["layers"]:
        raise DelayhwError(f"{path}: meta.layers: must be a non-empty list")
    for k, entry in enumerate(meta["layers"]):
        if not isinstance(entry, dict):
            raise DelayhwError(f"{path}: meta.layers[{k}]: must be a JSON object")
        wanted = _LAYER_KEYS | (_LIF_KEYS if entry.get("kind") == "lif" else set())
        if wanted - entry.keys():
            raise DelayhwError(f"{path}: meta.layers[{k}]: missing key(s) "
                               f"{sorted(wanted - entry.keys())}")
        if entry.keys() - wanted:
            raise DelayhwError(f"{path}: meta.layers[{k}]: unknown key(s) "
                               f"{sorted(entry.keys() - wanted)}"
                               + (" (threshold/reset are only for lif layers)"
                                  if entry.keys() & _LIF_KEYS else ""))
        for flag in ("recurrent", "bias"):
            if not isinstance(entry[flag], bool):
                raise DelayhwError(f"{path}: meta.layers[{k}].{flag}: must be true or false")
    return meta


def load_model(path: str | os.PathLike) -> Model:
    """Load and fully validate a model file."""
    path = Path(path)
    arrays = read_npz(path)
    meta = _parse_meta(path, arrays.pop("meta", None))
    expected: set[str] = set()
    layers = []
    for k, entry in enumerate(meta["layers"]):
        names = [f"l{k}.w", f"l{k}.d"]
        if entry["recurrent"]:
            names += [f"l{k}.w_rec", f"l{k}.d_rec"]
        if entry["bias"]:
            names.append(f"l{k}.bias")
        expected.update(names)
        for name in names:
            if name not in arrays:
                raise DelayhwError(f"{path}: {name}: missing array (meta says layer {k} has it)")
        layers.append(Layer(
            name=entry["name"], kind=entry["kind"], size=entry["size"], w_bits=entry["w_bits"],
            v_bits=entry["v_bits"], f_bits=entry["f_bits"], beta=entry["beta"],
            d_max=entry["d_max"], w=arrays[f"l{k}.w"], d=arrays[f"l{k}.d"],
            w_rec=arrays.get(f"l{k}.w_rec") if entry["recurrent"] else None,
            d_rec=arrays.get(f"l{k}.d_rec") if entry["recurrent"] else None,
            bias=arrays.get(f"l{k}.bias") if entry["bias"] else None,
            threshold=entry.get("threshold"), reset=entry.get("reset")))
    extra = sorted(arrays.keys() - expected)
    if extra:
        raise DelayhwError(f"{path}: {extra[0]}: unexpected array (not described by meta)")
    model = Model(n_inputs=meta["n_inputs"], layers=tuple(layers), train=meta.get("train"))
    model.validate(str(path))
    return _as_int64(model)


def _as_int64(model: Model) -> Model:
    def cast(a):
        return None if a is None else np.asarray(a, dtype=np.int64)
    return model.with_layers([
        replace(layer, w=cast(layer.w), d=cast(layer.d), w_rec=cast(layer.w_rec),
                d_rec=cast(layer.d_rec), bias=cast(layer.bias),
                size=int(layer.size), w_bits=int(layer.w_bits), v_bits=int(layer.v_bits),
                f_bits=int(layer.f_bits), beta=int(layer.beta), d_max=int(layer.d_max),
                threshold=None if layer.threshold is None else int(layer.threshold))
        for layer in model.layers])


def save_model(model: Model, path: str | os.PathLike) -> Path:
    """Validate ``model`` and write it as a model file (compact integer dtypes)."""
    model.validate(str(path))
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(model.meta()))}
    for name, arr in model.arrays().items():
        dtype = np.uint8 if name.endswith((".d", ".d_rec")) else np.int16
        arrays[name] = np.asarray(arr).astype(dtype)
    return write_npz(path, arrays)


# ----------------------------------------------------------------------------- input files


@dataclass(frozen=True, eq=False)
class Inputs:
    """An input file: ``spikes`` ``(B, T, n_inputs)`` uint8 0/1, optional ``labels`` ``(B,)``."""

    spikes: np.ndarray
    labels: np.ndarray | None = None

    def save(self, path: str | os.PathLike) -> Path:
        return save_input(path, self.spikes, self.labels)


def _check_spikes(source: str, spikes: Any, n_inputs: int | None) -> np.ndarray:
    spikes = np.asarray(spikes)
    if spikes.dtype.kind not in "biu":
        raise DelayhwError(f"{source}: spikes: must be bool or integer 0/1, got dtype {spikes.dtype}")
    if spikes.ndim != 3:
        raise DelayhwError(f"{source}: spikes: must have shape (B, T, n_inputs), got {spikes.shape}")
    if n_inputs is not None and spikes.shape[2] != n_inputs:
        raise DelayhwError(f"{source}: spikes: the model has n_inputs={n_inputs}, the spikes have "
                           f"{spikes.shape[2]} channels")
    if spikes.size and spikes.dtype.kind != "b" and ((spikes != 0) & (spikes != 1)).any():
        bad = tuple(int(x) for x in np.argwhere((spikes != 0) & (spikes != 1))[0])
        raise DelayhwError(f"{source}: spikes: values must be 0 or 1, got {spikes[bad]} at {bad}")
    return spikes.astype(np.uint8)


def _check_labels(source: str, labels: Any, batch: int, n_classes: int | None) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise DelayhwError(f"{source}: labels: must be integers, got dtype {labels.dtype}")
    if labels.shape != (batch,):
        raise DelayhwError(f"{source}: labels: must have shape ({batch},) to match spikes, "
                           f"got {labels.shape}")
    hi = (n_classes - 1) if n_classes is not None else np.iinfo(np.int64).max
    if labels.size and (labels.min() < 0 or labels.max() > hi):
        raise DelayhwError(f"{source}: labels: must be in 0..{hi}, got {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


def load_input(path: str | os.PathLike, model: Model | None = None) -> Inputs:
    """Load an input file; with ``model``, also check channels and label range against it."""
    path = Path(path)
    arrays = read_npz(path)
    if "spikes" not in arrays:
        raise DelayhwError(f"{path}: spikes: missing array")
    extra = sorted(arrays.keys() - {"spikes", "labels"})
    if extra:
        raise DelayhwError(f"{path}: {extra[0]}: unexpected array (an input file holds 'spikes' "
                           f"and optionally 'labels')")
    spikes = _check_spikes(str(path), arrays["spikes"], model.n_inputs if model else None)
    labels = arrays.get("labels")
    if labels is not None:
        labels = _check_labels(str(path), labels, spikes.shape[0],
                               model.n_outputs if model else None)
    return Inputs(spikes, labels)


def save_input(path: str | os.PathLike, spikes: np.ndarray,
               labels: np.ndarray | None = None) -> Path:
    spikes = _check_spikes(str(path), spikes, None)
    arrays = {"spikes": spikes}
    if labels is not None:
        arrays["labels"] = _check_labels(str(path), labels, spikes.shape[0], None)
    return write_npz(path, arrays)


# ----------------------------------------------------------------------------- result files


@dataclass(frozen=True, eq=False)
class Result:
    """What a network computed for a batch: ``scores`` ``(B, size_last)`` int64,
    ``predictions`` ``(B,)`` int64, ``spikes[n]`` ``(B, T, size_k)`` uint8 for the n-th lif
    layer (layer index ``k = n``, since lif layers come first)."""

    scores: np.ndarray
    predictions: np.ndarray
    spikes: list[np.ndarray]

    @staticmethod
    def from_scores(scores: np.ndarray, spikes: list[np.ndarray]) -> "Result":
        """Build a result; predictions are argmax of scores, ties to the lowest index."""
        scores = np.asarray(scores, dtype=np.int64)
        return Result(scores, np.argmax(scores, axis=1).astype(np.int64),
                      [np.asarray(s, dtype=np.uint8) for s in spikes])

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"scores": self.scores, "predictions": self.predictions}
        for k, s in enumerate(self.spikes):
            out[f"spikes_l{k}"] = s
        return out

    def save(self, path: str | os.PathLike) -> Path:
        return write_npz(path, self.arrays())

    def accuracy(self, labels: np.ndarray) -> float:
        return float(np.mean(self.predictions == labels)) if len(labels) else float("nan")


def load_result(path: str | os.PathLike) -> Result:
    path = Path(path)
    arrays = read_npz(path)
    for name in ("scores", "predictions"):
        if name not in arrays:
            raise DelayhwError(f"{path}: {name}: missing array")
    scores, predictions = arrays.pop("scores"), arrays.pop("predictions")
    if scores.ndim != 2 or scores.dtype.kind not in "iu":
        raise DelayhwError(f"{path}: scores: must be an integer array (B, size_last)")
    if predictions.shape != scores.shape[:1] or predictions.dtype.kind not in "iu":
        raise DelayhwError(f"{path}: predictions: must be integers of shape ({scores.shape[0]},)")
    spikes = []
    for k in range(len(arrays)):
        s = arrays.pop(f"spikes_l{k}", None)
        if s is None:
            break
        if s.ndim != 3 or s.shape[0] != scores.shape[0] or s.dtype.kind not in "biu":
            raise DelayhwError(f"{path}: spikes_l{k}: must be 0/1 integers of shape (B, T, size)")
        spikes.append(s.astype(np.uint8))
    if arrays:
        raise DelayhwError(f"{path}: {sorted(arrays)[0]}: unexpected array")
    return Result(scores.astype(np.int64), predictions.astype(np.int64), spikes)
