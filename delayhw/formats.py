"""Model, input and result files (docs/design.md section 4). Always ``allow_pickle=False``.

Loaders validate fully and raise :class:`~delayhw.DelayhwError` naming the file, the field
and the rule. Savers validate before writing and write atomically (temp file + rename), so a
failed save never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import math
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import DelayhwError
from .limits import JSON_MAX_DEPTH, JSON_MAX_INT_DIGITS, META_MAX_CHARS, check_memory
from .publish import Outputs, show_path
from .spec import LIMITS, Layer, LayerKind, Model, array_shapes, check_int, check_kind, check_layer_params

__all__ = ["load_model", "save_model", "load_input", "save_input", "Inputs", "Result",
           "load_result", "read_npz", "write_npz", "Archive", "check_spikes"]

FORMAT = "delayhw-model"
VERSION = 1
_TOP_KEYS = {"format", "version", "n_inputs", "layers"}
_LAYER_KEYS = {"name", "kind", "size", "w_bits", "v_bits", "f_bits", "beta", "d_max",
               "recurrent", "bias"}
_LIF_KEYS = {"threshold", "reset"}


# ----------------------------------------------------------------------------- raw npz I/O


@dataclass(frozen=True)
class Member:
    """One array of an npz archive, known from its zip entry and .npy header (no data read)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    info: zipfile.ZipInfo

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


_ZIP_HEAD = (b"PK\x03\x04", b"PK\x05\x06")        # a local file header, or an empty archive
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}


class Archive:
    """An npz file opened for checking: the names, shapes and dtypes of its arrays are known
    (:attr:`members`) before any array data is read (:meth:`read`), so a loader can refuse
    wrong or oversized content without allocating it. Refuses, naming the rule: a missing,
    unreadable, special or non-zip file, a truncated head, duplicate zip members, members
    that are not ``.npy``, compression other than stored/deflate, encryption, pickled
    (object) arrays, and members whose size disagrees with their header."""

    def __init__(self, path: str | os.PathLike):
        self.source = show_path(path)
        self._file = _open_regular(path, self.source)
        self.path = Path(path)
        try:
            self._zip = self._open_zip()
            self.members = self._index()
        except BaseException:
            self._file.close()
            raise

    def _fail(self, rule: str, member: str | None = None) -> DelayhwError:
        where = f"{self.source}: {show_path(member)}" if member else self.source
        return DelayhwError(f"{where}: {rule}")

    def _open_zip(self) -> zipfile.ZipFile:
        head = self._file.read(6)
        if not head:
            raise self._fail("empty file, not an npz archive")
        if head[:4] not in _ZIP_HEAD:
            self._file.seek(0)
            if head.startswith(b"\x93NUMPY"):
                raise self._fail("a single .npy array, not an npz archive (expected a file "
                                 "written by numpy.savez)")
            if zipfile.is_zipfile(self._file):
                raise self._fail("the start of the file is missing or corrupt (a truncated "
                                 "head): not a readable npz archive")
            raise self._fail("not an npz archive (expected a file written by numpy.savez)")
        self._file.seek(0)
        try:
            return zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            raise self._fail(f"truncated or corrupt npz archive ({exc})") from None

    def _index(self) -> dict[str, Member]:
        members: dict[str, Member] = {}
        seen: set[str] = set()
        for info in self._zip.infolist():
            if info.filename in seen:
                raise self._fail("duplicate zip member (the archive is ambiguous: two arrays "
                                 "under one name)", info.filename)
            seen.add(info.filename)
            if info.is_dir() or not info.filename.endswith(".npy"):
                raise self._fail("not a .npy member (an npz archive holds only NAME.npy "
                                 "arrays)", info.filename)
            if info.flag_bits & 0x1:
                raise self._fail("encrypted zip member (not supported)", info.filename)
            if info.compress_type not in _ZIP_METHODS:
                raise self._fail(f"unsupported zip compression method {info.compress_type} "
                                 f"(only stored and deflate, as numpy.savez writes)",
                                 info.filename)
            name = info.filename[:-4]
            members[name] = self._header(name, info)
        return members

    def _header(self, name: str, info: zipfile.ZipInfo) -> Member:
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy format version {version}")
                header_len = f.tell()
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
            raise self._fail(f"not a valid .npy array ({exc})", name) from None
        if dtype.hasobject:
            raise self._fail("holds a pickled object array; only plain numeric and string "
                             "arrays are accepted (pickles can run code)", name)
        member = Member(name, tuple(int(n) for n in shape), dtype, info)
        if header_len + member.nbytes != info.file_size:
            raise self._fail(f"truncated or corrupt (its header declares {member.nbytes} bytes "
                             f"of data, the zip entry holds {info.file_size - header_len})",
                             name)
        return member

    def read(self, name: str) -> np.ndarray:
        """The data of array ``name`` (checked against the memory budget first)."""
        member = self.members[name]
        check_memory(self.source, show_path(name), member.nbytes, f"array {member.shape} "
                     f"{member.dtype}")
        try:
            with self._zip.open(member.info) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
            raise self._fail(f"truncated or corrupt npz archive ({type(exc).__name__}: {exc})",
                             name) from None

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_regular(path: Path, source: str):
    """``open(path, 'rb')`` with one-line errors: missing, permission, directory, FIFO..."""
    check_regular(path, source)
    try:
        return open(path, "rb")
    except PermissionError:
        raise DelayhwError(f"{source}: permission denied (cannot read the file)") from None
    except OSError as exc:
        raise DelayhwError(f"{source}: cannot open ({exc.strerror})") from None


def check_regular(path: str | os.PathLike, source: str, what: str = "an .npz file") -> None:
    """Refuse (one line naming the kind) an input path that is missing, unreachable, a
    directory, a FIFO or a device, before anything tries to read it."""
    if not os.fspath(path):
        raise DelayhwError(f"'': empty path, expected {what}")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DelayhwError(f"{source}: no such file") from None
    except NotADirectoryError:
        raise DelayhwError(f"{source}: no such file (a part of the path is not a "
                           f"directory)") from None
    except PermissionError:
        raise DelayhwError(f"{source}: permission denied (cannot reach the file)") from None
    except (OSError, ValueError) as exc:
        raise DelayhwError(f"{source}: cannot open ({getattr(exc, 'strerror', None) or exc})") \
            from None
    if stat.S_ISDIR(st.st_mode):
        raise DelayhwError(f"{source}: is a directory, expected {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(
            st.st_mode) or stat.S_ISBLK(st.st_mode) else "a special file")
        raise DelayhwError(f"{source}: is {kind}, not a regular file (delayhw reads "
                           f"{what.split(' ', 1)[1]}s only from regular files)")


def as_int64(source: str, name: str, arr: np.ndarray) -> np.ndarray:
    """An integer array as int64, refusing (never wrapping) unsigned values above the
    int64 range: uint64 2^64 - 1 would otherwise be read as -1."""
    if arr.dtype.kind == "u" and arr.dtype.itemsize >= 8 and arr.size:
        top = int(arr.max())
        if top > np.iinfo(np.int64).max:
            raise DelayhwError(f"{source}: {name}: value {top} does not fit a signed 64-bit "
                               f"integer (it would be read as {top - (1 << 64)})")
    return arr.astype(np.int64, copy=False)


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read eagerly with the checks of :class:`Archive`."""
    with Archive(path) as archive:
        return {name: archive.read(name) for name in archive.members}


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *,
              force: bool = True) -> Path:
    """Write ``arrays`` to ``path`` as a compressed npz (exact name, no '.npz' added),
    published through :class:`~delayhw.publish.Outputs` (an existing file is replaced only
    with ``force``, the default for the Python API). The bytes depend only on the arrays
    (fixed zip timestamps), so equal results give identical files."""
    with Outputs(force=force) as outputs:
        staged = outputs.file(path, "output")
        with open(staged, "xb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
    return Path(path)


# ----------------------------------------------------------------------------- model files


class _JsonRule(Exception):
    """A strictness rule of the meta JSON, broken."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JsonRule(f"duplicate key {key!r} (the JSON is ambiguous)")
        out[key] = value
    return out


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > JSON_MAX_INT_DIGITS:
        raise _JsonRule(f"an integer with {len(text.lstrip('-'))} digits (at most "
                        f"{JSON_MAX_INT_DIGITS} are accepted)")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JsonRule(f"number {text[:30]} is out of range")
    return value


def _no_constant(text: str) -> Any:
    raise _JsonRule(f"{text} is not JSON")


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [v for x in level if isinstance(x, (dict, list))
                 for v in (x.values() if isinstance(x, dict) else x)]
    return depth - 1


def parse_meta_json(source: str, text: str, field: str = "meta") -> Any:
    """Strict JSON of a model file's ``meta`` (or of another ``field``): no duplicate keys,
    no NaN/Infinity, integers of at most JSON_MAX_INT_DIGITS digits, nesting at most
    JSON_MAX_DEPTH deep."""
    if len(text) > META_MAX_CHARS:
        raise DelayhwError(f"{source}: {field}: {len(text)} characters, more than the "
                           f"{META_MAX_CHARS} accepted")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_bounded_int,
                           parse_float=_finite_float, parse_constant=_no_constant)
    except _JsonRule as exc:
        raise DelayhwError(f"{source}: {field}: not accepted JSON: {exc}") from None
    except RecursionError:
        raise DelayhwError(f"{source}: {field}: not accepted JSON: nested more than "
                           f"{JSON_MAX_DEPTH} levels deep") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise DelayhwError(f"{source}: {field}: not valid JSON ({exc})") from None
    if _depth(value) > JSON_MAX_DEPTH:
        raise DelayhwError(f"{source}: {field}: not accepted JSON: nested more than "
                           f"{JSON_MAX_DEPTH} levels deep")
    return value


def _read_meta(source: str, archive: "Archive") -> dict[str, Any]:
    member = archive.members.get("meta")
    if member is None:
        raise DelayhwError(f"{source}: meta: missing (a model file needs a 'meta' JSON string)")
    if member.shape != () or member.dtype.kind not in "US":
        raise DelayhwError(f"{source}: meta: must be a 0-d string array holding JSON, "
                           f"got dtype {member.dtype} shape {member.shape}")
    if member.nbytes > 4 * META_MAX_CHARS:
        raise DelayhwError(f"{source}: meta: {member.nbytes} bytes, more than a model's meta "
                           f"may hold ({META_MAX_CHARS} characters)")
    text = archive.read("meta").item()
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return _check_meta(source, parse_meta_json(source, text))


def _check_meta(source: str, meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict):
        raise DelayhwError(f"{source}: meta: must be a JSON object")
    if meta.get("format") != FORMAT:
        raise DelayhwError(f"{source}: meta.format: must be {FORMAT!r}, "
                           f"got {meta.get('format')!r}")
    version = meta.get("version")
    if type(version) is not int or version != VERSION:
        raise DelayhwError(f"{source}: meta.version: this delayhw reads version {VERSION} (the "
                           f"integer), got {version!r}")
    missing = _TOP_KEYS - meta.keys()
    extra = meta.keys() - _TOP_KEYS - {"train"}
    if missing:
        raise DelayhwError(f"{source}: meta: missing key(s) {sorted(missing)}")
    if extra:
        raise DelayhwError(f"{source}: meta: unknown key(s) {sorted(extra)} (trainer extras "
                           f"belong under 'train')")
    if not isinstance(meta["layers"], list) or not meta["layers"]:
        raise DelayhwError(f"{source}: meta.layers: must be a non-empty list")
    if "train" in meta and not isinstance(meta["train"], dict):
        raise DelayhwError(f"{source}: meta.train: must be a JSON object")
    for k, entry in enumerate(meta["layers"]):
        if not isinstance(entry, dict):
            raise DelayhwError(f"{source}: meta.layers[{k}]: must be a JSON object")
        check_kind(source, k, entry.get("kind"), k == len(meta["layers"]) - 1)
        wanted = _LAYER_KEYS | (_LIF_KEYS if entry["kind"] == LayerKind.LIF else set())
        if wanted - entry.keys():
            raise DelayhwError(f"{source}: meta.layers[{k}]: missing key(s) "
                               f"{sorted(wanted - entry.keys())}")
        if entry.keys() - wanted:
            raise DelayhwError(f"{source}: meta.layers[{k}]: unknown key(s) "
                               f"{sorted(entry.keys() - wanted)}"
                               + (" (threshold/reset are only for lif layers)"
                                  if entry.keys() & _LIF_KEYS else ""))
    return meta


def load_model(path: str | os.PathLike) -> Model:
    """Load and fully validate a model file. Names, shapes and dtypes of every array are
    checked against ``meta`` (and the memory budget) before any array data is read."""
    source = show_path(path)
    with Archive(path) as archive:
        meta = _read_meta(source, archive)
        check_int(source, "n_inputs", meta["n_inputs"], *LIMITS["n_inputs"])
        shapes: dict[str, tuple[int, ...]] = {}
        n_prev = meta["n_inputs"]
        entries = meta["layers"]
        for k, entry in enumerate(entries):
            check_layer_params(source, k, entry, k == len(entries) - 1)
            shapes.update(array_shapes(n_prev, entry, k))
            n_prev = entry["size"]
        for name, shape in shapes.items():
            member = archive.members.get(name)
            if member is None:
                raise DelayhwError(f"{source}: {name}: missing array (meta says layer "
                                   f"{name[1:name.index('.')]} has it)")
            if member.dtype.kind not in "iu":
                raise DelayhwError(f"{source}: {name}: must have an integer dtype, "
                                   f"got {member.dtype}")
            if member.shape != shape:
                raise DelayhwError(f"{source}: {name}: must have shape {shape}, "
                                   f"got {member.shape}")
        extra = sorted(archive.members.keys() - shapes.keys() - {"meta"})
        if extra:
            raise DelayhwError(f"{source}: {show_path(extra[0])}: unexpected array (not "
                               f"described by meta)")
        entries_total = sum(int(np.prod(s, dtype=object)) for s in shapes.values())
        check_memory(source, "arrays", entries_total * 8 + max(
            archive.members[n].nbytes for n in shapes), "the model (int64 in memory)")
        arrays = {}
        for name in shapes:
            arrays[name] = as_int64(source, name, archive.read(name))
    layers = []
    for k, entry in enumerate(entries):
        layers.append(Layer(
            name=entry["name"], kind=entry["kind"], size=entry["size"], w_bits=entry["w_bits"],
            v_bits=entry["v_bits"], f_bits=entry["f_bits"], beta=entry["beta"],
            d_max=entry["d_max"], w=arrays[f"l{k}.w"], d=arrays[f"l{k}.d"],
            w_rec=arrays.get(f"l{k}.w_rec"), d_rec=arrays.get(f"l{k}.d_rec"),
            bias=arrays.get(f"l{k}.bias"),
            threshold=entry.get("threshold"), reset=entry.get("reset")))
    model = Model(n_inputs=meta["n_inputs"], layers=tuple(layers), train=meta.get("train"))
    return model.validate(source)


def save_model(model: Model, path: str | os.PathLike, *, force: bool = True) -> Path:
    """Validate ``model`` and write it as a model file (compact integer dtypes); an existing
    file is replaced only with ``force`` (:func:`write_npz`)."""
    model.validate(show_path(path))
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(model.meta()))}
    for name, arr in model.arrays().items():
        dtype = np.uint8 if name.endswith((".d", ".d_rec")) else np.int16
        arrays[name] = np.asarray(arr).astype(dtype)
    return write_npz(path, arrays, force=force)


# ----------------------------------------------------------------------------- input files


@dataclass(frozen=True, eq=False)
class Inputs:
    """An input file: ``spikes`` ``(B, T, n_inputs)`` uint8 0/1, optional ``labels`` ``(B,)``;
    from recordings (docs/audio_files.md) also the ``classes`` the labels
    index, the source ``files`` (one per sample) and the ``audio`` encoding."""

    spikes: np.ndarray
    labels: np.ndarray | None = None
    classes: tuple[str, ...] | None = None
    files: tuple[str, ...] | None = None
    audio: Any = None       #: a delayhw.audio.AudioEncoding

    def save(self, path: str | os.PathLike, *, force: bool = True) -> Path:
        return save_input(path, self.spikes, self.labels, classes=self.classes,
                          files=self.files, audio=self.audio, force=force)


#: The arrays an input file may hold.
INPUT_ARRAYS = ("spikes", "labels", "classes", "files", "audio")
#: At most this many classes in an input file's ``classes``.
MAX_CLASSES = 65535


def check_spikes(source: str, spikes: Any, n_inputs: int | None, *,
                 nonempty: bool = True) -> np.ndarray:
    """``spikes`` as ``(B, T, n_inputs)`` uint8 0/1, or DelayhwError naming ``source``.
    ``nonempty`` (files) also refuses B = 0 (no samples) and T = 0 (no steps)."""
    if not isinstance(spikes, np.ndarray):
        try:
            spikes = np.asarray(spikes)
        except (ValueError, TypeError) as exc:
            raise DelayhwError(f"{source}: spikes: must be a (B, T, n_inputs) array of 0/1, "
                               f"got a ragged or mixed sequence ({exc})") from None
    if spikes.dtype.kind not in "biu":
        raise DelayhwError(f"{source}: spikes: must be bool or integer 0/1, got dtype {spikes.dtype}")
    if spikes.ndim != 3:
        raise DelayhwError(f"{source}: spikes: must have shape (B, T, n_inputs), got {spikes.shape}")
    if n_inputs is not None and spikes.shape[2] != n_inputs:
        raise DelayhwError(f"{source}: spikes: the model has n_inputs={n_inputs}, the spikes have "
                           f"{spikes.shape[2]} channels")
    if nonempty:
        _check_nonempty(source, spikes.shape)
    if spikes.size and spikes.dtype.kind != "b":
        bad = (spikes != 0) & (spikes != 1)
        if bad.any():
            at = tuple(int(x) for x in np.argwhere(bad)[0])
            raise DelayhwError(f"{source}: spikes: values must be 0 or 1, got {spikes[at]} at {at}")
    return spikes.astype(np.uint8, copy=False)


def _check_nonempty(source: str, shape: tuple[int, ...]) -> None:
    if shape[0] == 0:
        raise DelayhwError(f"{source}: spikes: has no samples (B = 0 in shape {shape})")
    if shape[1] == 0:
        raise DelayhwError(f"{source}: spikes: has no time steps (T = 0 in shape {shape})")


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


def _check_strings(source: str, name: str, values: Any, length: int | None) -> tuple[str, ...]:
    """A 1-D array or sequence of strings (``length`` of them when given)."""
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.ndim != 1 or (arr.size and arr.dtype.kind != "U"):
        raise DelayhwError(f"{source}: {name}: must be a 1-D array of strings, got dtype "
                           f"{arr.dtype} shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise DelayhwError(f"{source}: {name}: must hold {length} strings (one per sample), "
                           f"got {arr.shape[0]}")
    return tuple(str(v) for v in arr)


def _check_classes(source: str, classes: Any, labels: np.ndarray | None,
                   model: Model | None) -> tuple[str, ...]:
    names = _check_strings(source, "classes", classes, None)
    if not 1 <= len(names) <= MAX_CLASSES:
        raise DelayhwError(f"{source}: classes: must hold 1..{MAX_CLASSES} class names, got "
                           f"{len(names)}")
    if any(not n for n in names) or len(set(names)) != len(names):
        raise DelayhwError(f"{source}: classes: class names must be distinct and non-empty")
    if labels is not None and labels.size and int(labels.max()) >= len(names):
        raise DelayhwError(f"{source}: labels: must index classes (0..{len(names) - 1}), got "
                           f"{int(labels.max())}")
    if model is not None and len(names) != model.n_outputs:
        raise DelayhwError(f"{source}: classes: {len(names)} class names, the model has "
                           f"{model.n_outputs} outputs")
    return names


def _check_audio(source: str, audio: Any, shape: tuple[int, ...]):
    """The ``audio`` encoding (a JSON text or an AudioEncoding) matching spikes of ``shape``."""
    from .audio import AudioEncoding
    if not isinstance(audio, AudioEncoding):
        audio = AudioEncoding.from_json(parse_meta_json(source, audio, "audio"),
                                        f"{source}: audio")
    if shape[1:] != (audio.steps, audio.n_channels):
        raise DelayhwError(f"{source}: audio: the encoding gives {audio.steps} steps x "
                           f"{audio.n_channels} channels, the spikes have {shape[1]} x "
                           f"{shape[2]}")
    return audio


def _text_member(source: str, member: Member, ndim: int) -> None:
    """Refuse, before reading it, a string member of the wrong dimension or size."""
    if len(member.shape) != ndim or member.dtype.kind != "U":
        raise DelayhwError(f"{source}: {member.name}: must be a {ndim}-D string array, got "
                           f"dtype {member.dtype} shape {member.shape}")
    if ndim == 0 and member.nbytes > 4 * META_MAX_CHARS:
        raise DelayhwError(f"{source}: {member.name}: {member.nbytes} bytes, more than "
                           f"{META_MAX_CHARS} characters")


def load_input(path: str | os.PathLike, model: Model | None = None) -> Inputs:
    """Load an input file; with ``model``, also check channels and label range against it.
    Shapes and dtypes are checked (and the memory budget) before the data is read. Besides
    ``spikes`` and ``labels`` an input file may hold ``classes`` (1-D strings, the names the
    labels index), ``files`` (1-D strings, one per sample) and ``audio`` (0-d string: the
    JSON of the audio encoding the spikes were made with, matching their steps and
    channels); docs/audio_files.md."""
    source = show_path(path)
    with Archive(path) as archive:
        members = archive.members
        if "spikes" not in members:
            raise DelayhwError(f"{source}: spikes: missing array")
        extra = sorted(members.keys() - set(INPUT_ARRAYS))
        if extra:
            raise DelayhwError(f"{source}: {show_path(extra[0])}: unexpected array (an input "
                               f"file holds 'spikes' and optionally 'labels', 'classes', "
                               f"'files' and 'audio')")
        head = members["spikes"]
        if head.dtype.kind not in "biu":
            raise DelayhwError(f"{source}: spikes: must be bool or integer 0/1, got dtype "
                               f"{head.dtype}")
        if len(head.shape) != 3:
            raise DelayhwError(f"{source}: spikes: must have shape (B, T, n_inputs), "
                               f"got {head.shape}")
        if model is not None and head.shape[2] != model.n_inputs:
            raise DelayhwError(f"{source}: spikes: the model has n_inputs={model.n_inputs}, the "
                               f"spikes have {head.shape[2]} channels")
        _check_nonempty(source, head.shape)
        if "labels" in members and members["labels"].shape != head.shape[:1]:
            raise DelayhwError(f"{source}: labels: must have shape ({head.shape[0]},) to match "
                               f"spikes, got {members['labels'].shape}")
        for name, ndim in (("classes", 1), ("files", 1), ("audio", 0)):
            if name in members:
                _text_member(source, members[name], ndim)
        check_memory(source, "spikes", head.nbytes + int(np.prod(head.shape, dtype=object)),
                     f"the spikes {head.shape}")
        spikes = check_spikes(source, archive.read("spikes"),
                              model.n_inputs if model else None)
        labels = archive.read("labels") if "labels" in members else None
        texts = {name: archive.read(name) for name in ("classes", "files", "audio")
                 if name in members}
    if labels is not None:
        labels = _check_labels(source, labels, spikes.shape[0],
                               model.n_outputs if model else None)
    classes = (_check_classes(source, texts["classes"], labels, model)
               if "classes" in texts else None)
    files = (_check_strings(source, "files", texts["files"], spikes.shape[0])
             if "files" in texts else None)
    audio = _check_audio(source, str(texts["audio"].item()), spikes.shape) \
        if "audio" in texts else None
    return Inputs(spikes, labels, classes, files, audio)


def save_input(path: str | os.PathLike, spikes: np.ndarray,
               labels: np.ndarray | None = None, *, classes: Sequence[str] | None = None,
               files: Sequence[str] | None = None, audio: Any = None,
               force: bool = True) -> Path:
    """Validate and write an input file (:func:`load_input` describes the arrays; ``audio``
    is a :class:`delayhw.audio.AudioEncoding`); an existing file is replaced only with
    ``force`` (:func:`write_npz`)."""
    source = show_path(path)
    spikes = check_spikes(source, spikes, None)
    arrays = {"spikes": spikes}
    if labels is not None:
        arrays["labels"] = labels = _check_labels(source, labels, spikes.shape[0], None)
    if classes is not None:
        arrays["classes"] = np.array(_check_classes(source, list(classes), labels, None),
                                     dtype=str)
    if files is not None:
        arrays["files"] = np.array(_check_strings(source, "files", list(files),
                                                  spikes.shape[0]), dtype=str)
    if audio is not None:
        enc = _check_audio(source, audio, spikes.shape)
        arrays["audio"] = np.array(json.dumps(enc.to_json()))
    return write_npz(path, arrays, force=force)


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

    def save(self, path: str | os.PathLike, *, force: bool = True) -> Path:
        """Write the result file (:func:`write_npz`: replaces ``path`` only with ``force``)."""
        return write_npz(path, self.arrays(), force=force)

    def accuracy(self, labels: np.ndarray) -> float:
        return float(np.mean(self.predictions == labels)) if len(labels) else float("nan")


def load_result(path: str | os.PathLike) -> Result:
    source = show_path(path)
    with Archive(path) as archive:
        members = archive.members
        for name in ("scores", "predictions"):
            if name not in members:
                raise DelayhwError(f"{source}: {name}: missing array")
        scores, predictions = members["scores"], members["predictions"]
        if len(scores.shape) != 2 or scores.dtype.kind not in "iu":
            raise DelayhwError(f"{source}: scores: must be an integer array (B, size_last)")
        if predictions.shape != scores.shape[:1] or predictions.dtype.kind not in "iu":
            raise DelayhwError(f"{source}: predictions: must be integers of shape "
                               f"({scores.shape[0]},)")
        names = ["scores", "predictions"]
        for k in range(len(members)):
            s = members.get(f"spikes_l{k}")
            if s is None:
                break
            if len(s.shape) != 3 or s.shape[0] != scores.shape[0] or s.dtype.kind not in "biu":
                raise DelayhwError(f"{source}: spikes_l{k}: must be 0/1 integers of shape "
                                   f"(B, T, size)")
            names.append(s.name)
        extra = sorted(members.keys() - set(names))
        if extra:
            raise DelayhwError(f"{source}: {show_path(extra[0])}: unexpected array")
        check_memory(source, "arrays", sum(members[n].nbytes for n in names), "the result")
        arrays = {name: archive.read(name) for name in names}
    spikes = [arrays[n].astype(np.uint8) for n in names[2:]]
    return Result(as_int64(source, "scores", arrays["scores"]),
                  as_int64(source, "predictions", arrays["predictions"]), spikes)
