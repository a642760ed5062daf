"""Recordings on disk -> spikes: reading audio files, the folder-per-label layout, and an
encoded data set (docs/audio_files.md).

- :func:`read_recording`: one WAV, FLAC or OGG file (``soundfile``) as mono int16 at the
  encoding's sample rate. Several channels are mixed to mono by the integer mean
  ``floor(sum of the channels / channels)``; another sample rate is resampled with
  ``scipy.signal.resample_poly`` (in float64, then rounded half to even and clipped to
  int16). Bit-exactness starts at these int16 samples: the same samples give the same
  spikes everywhere, while libsndfile's decoding and the resampler are outside the contract.
- :func:`scan`: AUDIO arguments, each a folder of label folders (``DIR/<class>/<file>``) or
  one audio file. Headers are read (never the samples) so every bad input is refused before
  any work, and the memory a recording needs is checked from its header's frame count.
- :func:`encode_files` / :func:`load_audio`: an :class:`AudioSet` (spikes, labels, class
  names, file names, the encoding), saved as an input file with ``classes``, ``files`` and
  ``audio`` (:func:`delayhw.formats.save_input`).
- :func:`model_audio`: the encoding and class names a model file records (``meta.train``).

Every bad input raises :class:`DelayhwError` naming the file and the rule.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .audio import AudioEncoding, design_encoding, encode_many
from .errors import DelayhwError
from .limits import check_memory, memory_budget
from .publish import show_path

__all__ = ["AUDIO_SUFFIXES", "Recording", "AudioSet", "read_recording", "probe", "scan",
           "encode_files", "check_encoding_memory", "derive_encoding", "load_audio", "model_audio", "recording_bytes"]

#: File name endings read as audio (case-insensitive).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
_SUFFIX_TEXT = ".wav, .flac or .ogg"
#: Recordings encoded together (encode_many's batch), at most this many...
CHUNK_RECORDINGS = 64
#: ... and at most this much encoding work memory (or half the budget, if smaller).
CHUNK_BYTES = 256 << 20


@dataclass(frozen=True)
class Recording:
    """One audio file as its header describes it; ``label`` is an index into the class
    names, ``-1`` when the recording has none."""

    path: Path
    label: int
    frames: int
    sample_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True, eq=False)
class AudioSet:
    """Encoded recordings: ``spikes`` ``(B, steps, channels)`` uint8, ``labels`` ``(B,)``
    int64 (``-1``: no label), the class names the labels index, the files and the encoding."""

    spikes: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    files: tuple[str, ...]
    encoding: AudioEncoding

    @property
    def labelled(self) -> bool:
        """Every recording has a label."""
        return bool(len(self.labels)) and bool((self.labels >= 0).all())

    def save(self, path: str | os.PathLike, *, force: bool = True) -> Path:
        """An input file with ``spikes``, ``labels`` (only when every recording has one),
        ``classes``, ``files`` and ``audio`` (the encoding)."""
        from .formats import save_input
        return save_input(path, self.spikes, self.labels if self.labelled else None,
                          classes=self.classes, files=self.files, audio=self.encoding,
                          force=force)


# ----------------------------------------------------------------------------- one file


def _is_audio_name(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def _resample_ratio(rate: int, target: int) -> tuple[int, int]:
    g = math.gcd(rate, target)
    return target // g, rate // g


def resampled_length(frames: int, rate: int, target: int) -> int:
    """Samples ``resample_poly`` gives for ``frames`` samples at ``rate`` -> ``target``."""
    up, down = _resample_ratio(rate, target)
    return frames if up == down else -(-frames * up // down)


def recording_bytes(frames: int, channels: int, rate: int, enc: AudioEncoding) -> int:
    """Estimated peak bytes of reading and encoding one recording on its own: the int16
    frames and their int64 channel sum; for resampling, the float64 input, output and
    intermediate and the polyphase filter (20 taps per phase); for the filterbank, the int16
    and int64 samples and the int64 envelopes (``bands / hop`` per sample)."""
    n = resampled_length(frames, rate, enc.sample_rate)
    need = frames * channels * 2 + (frames * 8 if channels > 1 else 0)
    up, down = _resample_ratio(rate, enc.sample_rate)
    if up != down:
        need += 8 * (frames + 2 * n) + 8 * 20 * max(up, down)
    return need + n * (2 + 8) + 8 * enc.bands * (n // enc.hop + 1)


def probe(path: Path) -> tuple[int, int, int]:
    """``(frames, sample_rate, channels)`` from the header of the audio file ``path``
    (no samples read); refuses a non-audio, empty, unreadable or zero-length file."""
    import soundfile as sf

    source = show_path(path)
    if not _is_audio_name(path):
        raise DelayhwError(f"{source}: not an audio file (recordings must end in "
                           f"{_SUFFIX_TEXT})")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DelayhwError(f"{source}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise DelayhwError(f"{source}: not a regular file (a recording must be a file)")
    if st.st_size == 0:
        raise DelayhwError(f"{source}: empty file (0 bytes), not a recording")
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError, ValueError) as exc:     # sf.LibsndfileError: RuntimeError
        why = str(getattr(exc, "error_string", "") or exc).splitlines()[0]
        raise DelayhwError(f"{source}: corrupt or unsupported audio header, cannot read it "
                           f"as WAV, FLAC or OGG ({why})") from None
    if info.frames <= 0:
        raise DelayhwError(f"{source}: zero-length recording (its header declares no "
                           f"samples)")
    if info.samplerate <= 0 or info.channels <= 0:
        raise DelayhwError(f"{source}: corrupt audio header (sample rate {info.samplerate}, "
                           f"{info.channels} channels)")
    return int(info.frames), int(info.samplerate), int(info.channels)


def check_recording_memory(rec: Recording, enc: AudioEncoding) -> None:
    """Refuse (before reading it) a recording whose encoding would exceed the memory budget."""
    check_memory(show_path(rec.path), "samples",
                 recording_bytes(rec.frames, rec.channels, rec.sample_rate, enc),
                 f"reading and encoding its {rec.frames} frames ({rec.seconds:.1f} s at "
                 f"{rec.sample_rate} Hz, {rec.channels} channel(s))")


def to_mono(frames: np.ndarray) -> np.ndarray:
    """int16 frames ``(n, channels)`` -> mono int16: ``floor(sum / channels)`` per frame."""
    frames = np.asarray(frames)
    if frames.ndim == 1 or frames.shape[1] == 1:
        return frames.reshape(-1).astype(np.int16)
    total = frames.astype(np.int64).sum(axis=1)
    return (total // frames.shape[1]).astype(np.int16)


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono int16 ``x`` at ``rate`` -> int16 at ``target`` (``resample_poly`` in float64,
    rounded half to even, clipped to -32768..32767); unchanged when the rates agree."""
    up, down = _resample_ratio(rate, target)
    if up == down:
        return np.asarray(x, dtype=np.int16)
    from scipy.signal import resample_poly
    y = resample_poly(np.asarray(x, dtype=np.float64), up, down)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def read_recording(path: str | os.PathLike, enc: AudioEncoding,
                   rec: Recording | None = None) -> np.ndarray:
    """The mono int16 samples of one audio file at ``enc.sample_rate`` (module docstring);
    the header is checked first (:func:`probe`, the memory budget)."""
    import soundfile as sf

    path = Path(path)
    if rec is None:
        rec = Recording(path, -1, *probe(path))
    check_recording_memory(rec, enc)
    try:
        data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except (RuntimeError, OSError, ValueError) as exc:
        why = str(getattr(exc, "error_string", "") or exc).splitlines()[0]
        raise DelayhwError(f"{show_path(path)}: corrupt audio data, cannot decode it "
                           f"({why})") from None
    if len(data) == 0:
        raise DelayhwError(f"{show_path(path)}: zero-length recording (no samples could be "
                           f"read)")
    return resample(to_mono(data), int(rate), enc.sample_rate)


# ----------------------------------------------------------------------------- layout


def _entries(folder: Path) -> list[Path]:
    """The entries of ``folder`` by name, hidden ones (``.name``) left out."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise DelayhwError(f"{show_path(folder)}: cannot list the folder "
                           f"({exc.strerror})") from None
    return [folder / n for n in names if not n.startswith(".")]


def _label_folders(folder: Path) -> list[Path]:
    """The label folders of a data folder; refuses a folder without any, and audio files
    beside them (their label would be unknown). Other files there (README, LICENSE, lists)
    are ignored."""
    entries = _entries(folder)
    dirs = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if not p.is_dir() and _is_audio_name(p)]
    if not dirs:
        hint = (" (it holds recordings directly: give them as single files, or move them "
                "into a folder named after their class)") if loose else ""
        raise DelayhwError(f"{show_path(folder)}: no label folders: a data folder holds one "
                           f"folder per class with its recordings, e.g. "
                           f"{show_path(folder / 'yes' / '001.wav')}{hint}")
    if loose:
        raise DelayhwError(f"{show_path(loose[0])}: a recording beside the label folders has "
                           f"no label: put it into the folder of its class")
    return dirs


def _recordings_in(label_dir: Path, label: int) -> list[Recording]:
    files = _entries(label_dir)
    if not files:
        raise DelayhwError(f"{show_path(label_dir)}: label folder without recordings "
                           f"({_SUFFIX_TEXT} files)")
    out = []
    for f in files:
        if f.is_dir():
            raise DelayhwError(f"{show_path(f)}: a folder inside a label folder (a label "
                               f"folder holds only recordings, {_SUFFIX_TEXT})")
        if not _is_audio_name(f):
            raise DelayhwError(f"{show_path(f)}: not an audio file (a label folder holds only "
                               f"recordings, {_SUFFIX_TEXT})")
        out.append(Recording(f, label, *probe(f)))
    return out


def scan(arguments: Sequence[str | os.PathLike], classes: Sequence[str] | None = None, *,
         known_from: str = "the model") -> tuple[list[Recording], tuple[str, ...]]:
    """The recordings named by AUDIO ``arguments`` and the class names.

    Each argument is a folder of label folders or one audio file. Class names: ``classes``
    if given (a label folder with another name is refused, naming ``known_from``), else the
    label folder names of every folder argument, sorted (labels are indices into them). A
    single file is labelled by its parent folder's name when that is a class, else it has
    no label (-1). Only headers are read; every file is checked (:func:`probe`)."""
    if not arguments:
        raise DelayhwError("AUDIO: no recordings given (folders of label folders or audio "
                           "files)")
    paths = [Path(a) for a in arguments]
    for p in paths:
        if not p.exists():
            raise DelayhwError(f"{show_path(p)}: no such file or folder")
    layout = {p: _label_folders(p) for p in paths if p.is_dir()}
    if classes is None:
        names = tuple(sorted({d.name for dirs in layout.values() for d in dirs}))
    else:
        names = tuple(classes)
        for dirs in layout.values():
            for d in dirs:
                if d.name not in names:
                    raise DelayhwError(
                        f"{show_path(d)}: label folder {d.name!r} is not a class of "
                        f"{known_from} (classes: {', '.join(names)})")
    index = {n: i for i, n in enumerate(names)}
    recordings: list[Recording] = []
    for p in paths:
        if p in layout:
            for d in layout[p]:
                recordings += _recordings_in(d, index[d.name])
        else:
            recordings.append(Recording(p, index.get(Path(os.path.abspath(p)).parent.name, -1), *probe(p)))
    return recordings, names


# ----------------------------------------------------------------------------- encoding


def check_encoding_memory(recordings: Sequence[Recording], enc: AudioEncoding) -> None:
    """Refuse, from their headers, recordings whose encoding exceeds the memory budget:
    each one on its own (:func:`recording_bytes`), then the spikes of all of them."""
    for rec in recordings:
        check_recording_memory(rec, enc)
    where = show_path(recordings[0].path) if recordings else "AUDIO"
    check_memory(where, "spikes", len(recordings) * enc.steps * enc.n_channels,
                 f"the spikes of {len(recordings)} recordings x {enc.steps} steps x "
                 f"{enc.n_channels} channels")


def _chunks(order: list[int], lengths: list[int], per_sample: float,
            limit: int) -> list[list[int]]:
    """Consecutive runs of ``order`` (sorted by length) of at most CHUNK_RECORDINGS
    recordings whose padded work memory stays within ``limit``."""
    chunks: list[list[int]] = []
    for i in order:
        if chunks and len(chunks[-1]) < CHUNK_RECORDINGS and \
                (len(chunks[-1]) + 1) * lengths[i] * per_sample <= limit:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


def encode_files(recordings: Sequence[Recording], classes: Sequence[str],
                 enc: AudioEncoding, *,
                 progress: Callable[[int], None] | None = None) -> AudioSet:
    """Read and encode ``recordings`` with ``enc``. Memory is checked before any samples
    are read: each recording on its own, then the spikes of all. Recordings are read and
    encoded in chunks of similar length (:func:`delayhw.audio.encode_many` on each; the
    spikes of a recording do not depend on the chunk). ``progress(n)``: n more done."""
    check_encoding_memory(recordings, enc)
    lengths = [resampled_length(r.frames, r.sample_rate, enc.sample_rate) for r in recordings]
    order = sorted(range(len(recordings)), key=lambda i: lengths[i])
    per_sample = 2 + 8 + 8 * enc.bands / enc.hop
    limit = min(CHUNK_BYTES, memory_budget() // 2)
    spikes = np.zeros((len(recordings), enc.steps, enc.n_channels), dtype=np.uint8)
    for chunk in _chunks(order, lengths, per_sample, limit):
        samples = [read_recording(recordings[i].path, enc, recordings[i]) for i in chunk]
        spikes[chunk] = encode_many(samples, enc, batch=len(chunk))
        if progress is not None:
            progress(len(chunk))
    labels = np.array([r.label for r in recordings], dtype=np.int64)
    return AudioSet(spikes, labels, tuple(classes), tuple(str(r.path) for r in recordings),
                    enc)


def derive_encoding(recordings: Sequence[Recording]) -> AudioEncoding:
    """The encoding derived from training recordings (:func:`delayhw.audio.design_encoding`)
    at the lowest sample rate among them (the band every recording has; recordings at a
    higher rate are resampled down to it)."""
    rate = min(r.sample_rate for r in recordings)
    return design_encoding(rate, [r.seconds for r in recordings])


def load_audio(arguments: Sequence[str | os.PathLike], *, encoding: AudioEncoding | None = None,
               classes: Sequence[str] | None = None, known_from: str = "the model",
               progress: Callable[[int], None] | None = None,
               on_start: Callable[[int], None] | None = None) -> AudioSet:
    """Scan (:func:`scan`) and encode AUDIO ``arguments``: with ``encoding`` (and a model's
    ``classes``) as given, else with the encoding derived from these recordings
    (:func:`derive_encoding`). ``on_start(n)`` is called with the number of recordings once
    they are all checked, before encoding."""
    recordings, names = scan(arguments, classes, known_from=known_from)
    enc = encoding if encoding is not None else derive_encoding(recordings)
    if on_start is not None:
        on_start(len(recordings))
    return encode_files(recordings, names, enc, progress=progress)


# ----------------------------------------------------------------------------- models


def model_audio(model: Any, source: str = "model") -> tuple[AudioEncoding, tuple[str, ...]]:
    """The audio encoding and class names a model file records (``meta.train.audio`` and
    ``meta.train.classes``, written by ``delayhw train --task DIR``), checked against the
    model's inputs and outputs."""
    train = model.train or {}
    if "audio" not in train:
        raise DelayhwError(f"{source}: meta.train.audio: the model records no audio encoding "
                           f"(it was not trained on recordings; train it with 'delayhw train "
                           f"--task DIR' on a folder of label folders)")
    enc = AudioEncoding.from_json(train["audio"], f"{source}: meta.train.audio")
    if enc.n_channels != model.n_inputs:
        raise DelayhwError(f"{source}: meta.train.audio: the encoding gives {enc.n_channels} "
                           f"channels, the model has n_inputs={model.n_inputs}")
    classes = train.get("classes")
    if (not isinstance(classes, list) or len(classes) != model.n_outputs
            or any(not isinstance(c, str) or not c for c in classes)
            or len(set(classes)) != len(classes)):
        raise DelayhwError(f"{source}: meta.train.classes: must be {model.n_outputs} distinct "
                           f"non-empty class names, one per output")
    return enc, tuple(classes)
