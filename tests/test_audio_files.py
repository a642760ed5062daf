"""Recordings on disk (issue 20, parts 2 and 6): reading WAV/FLAC/OGG as mono int16 at the
encoding's rate, the folder-of-label-folders layout, the input-file extension, and the
``encode`` / ``train --task DIR`` / ``classify`` commands, with every bad input refused in
one line naming the file and the rule."""

import csv
import json

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")
pytest.importorskip("scipy")

from scipy.signal import resample_poly  # noqa: E402

from delayhw import DelayhwError, load_input, load_model, save_model  # noqa: E402
from delayhw import golden  # noqa: E402
from delayhw.audio import design_encoding, encode  # noqa: E402
from delayhw.audio_files import model_audio, read_recording, scan  # noqa: E402
from delayhw.cli import main  # noqa: E402
from delayhw.formats import save_input  # noqa: E402

RATE = 8000
#: Three classes of distinct sounds: a low tone, a high tone, a rising chirp.
CLASSES = ("chirp", "high", "low")


def sound(kind: str, seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    f0 = {"low": 300.0, "high": 2000.0, "chirp": 400.0}[kind] * (1 + 0.05 * rng.random())
    phase = 2 * np.pi * (f0 * t + (1500.0 * t * t / seconds if kind == "chirp" else 0.0))
    x = 0.3 * np.sin(phase) * np.hanning(len(t)) + 0.01 * rng.standard_normal(len(t))
    return np.round(x * 32767).astype(np.int16)


def write(path, samples, rate=RATE, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, subtype="PCM_16", **kw)
    return path


def make_folder(root, per_class: int, seconds: float, seed: int, stereo_16k: bool = False):
    for c, kind in enumerate(CLASSES):
        for i in range(per_class):
            write(root / kind / f"r{i}.wav", sound(kind, seconds, seed + 10 * c + i))
    if stereo_16k:          # mixing and resampling: one stereo 16 kHz recording
        left = sound("low", seconds, seed + 99, rate=16000)
        write(root / "low" / "stereo16k.wav", np.stack([left, left // 2], axis=1), rate=16000)
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    # test recordings are longer: an encoding derived from train AND test would differ
    return (make_folder(root / "train", 4, 0.3, 0, stereo_16k=True),
            make_folder(root / "test", 2, 0.5, 100))


@pytest.fixture(scope="module")
def trained(folders, tmp_path_factory):
    train, test = folders
    out = tmp_path_factory.mktemp("model") / "m.npz"
    assert main(["train", "--task", str(train), "--test", str(test), "--out", str(out),
                 "--epochs", "2", "--qat-epochs", "1", "--hidden", "4", "--d-max", "3",
                 "--quiet", "--no-nir"]) == 0
    return out


def one_error_line(capsys, rule: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert rule in err, err
    return err


# ----------------------------------------------------------------------------- reading


def test_stereo_is_the_floor_mean_and_another_rate_is_resampled(tmp_path):
    left = np.array([-3, 3, -32768, 32767, 5, -1] * 50, dtype=np.int16)
    right = np.array([0, 0, -32768, 32767, 6, 0] * 50, dtype=np.int16)
    path = write(tmp_path / "s.wav", np.stack([left, right], axis=1), rate=16000)
    enc = design_encoding(RATE, [1.0])
    got = read_recording(path, enc)
    mono = np.array([(int(a) + int(b)) // 2 for a, b in zip(left, right)])   # floor of mean
    assert mono[0] == -2
    want = np.clip(np.rint(resample_poly(mono.astype(np.float64), 1, 2)), -32768, 32767)
    assert got.dtype == np.int16 and np.array_equal(got, want.astype(np.int16))
    # at the encoding's rate, mono int16 samples arrive unchanged
    same = write(tmp_path / "m.flac", left, rate=RATE, format="FLAC")
    assert np.array_equal(read_recording(same, enc), left)


def test_scan_labels_are_indices_into_the_sorted_label_folders(folders):
    train, _ = folders
    recordings, classes = scan([train])
    assert classes == CLASSES
    for r in recordings:
        assert classes[r.label] == r.path.parent.name
    # a single file: labelled by its parent folder when that is a class, else unlabelled
    one = train / "high" / "r0.wav"
    (recs, _) = scan([one], classes)
    assert recs[0].label == CLASSES.index("high")
    (recs, _) = scan([one], ("x", "y"))
    assert recs[0].label == -1


# ----------------------------------------------------------------------------- encode


def test_encode_writes_spikes_labels_classes_files_and_the_encoding(folders, tmp_path):
    train, _ = folders
    out = tmp_path / "x.npz"
    assert main(["encode", str(train), "--out", str(out)]) == 0
    data = load_input(out)
    recordings, _ = scan([train])
    enc = design_encoding(RATE, [r.seconds for r in recordings])
    assert data.audio == enc
    assert data.classes == CLASSES
    assert data.files == tuple(str(r.path) for r in recordings)
    assert data.labels.tolist() == [CLASSES.index(r.path.parent.name) for r in recordings]
    for k, r in enumerate(recordings):      # each recording, encoded on its own
        assert np.array_equal(data.spikes[k], encode(read_recording(r.path, enc), enc)), r.path
    assert data.spikes.any()
    # never replaced without --force
    assert main(["encode", str(train), "--out", str(out)]) == 2


def test_input_file_extension_round_trips_and_is_checked(folders, tmp_path):
    train, _ = folders
    out = tmp_path / "x.npz"
    assert main(["encode", str(train), "--out", str(out)]) == 0
    data = load_input(out)
    bad = tmp_path / "bad.npz"
    with pytest.raises(DelayhwError, match="bad.npz: files: must hold 13 strings"):
        save_input(bad, data.spikes, data.labels, files=data.files[:-1])
    with pytest.raises(DelayhwError, match="bad.npz: classes: class names must be distinct"):
        save_input(bad, data.spikes, data.labels, classes=("a", "a", "b"))
    with pytest.raises(DelayhwError, match="bad.npz: labels: must index classes"):
        save_input(bad, data.spikes, data.labels, classes=("a", "b"))
    with pytest.raises(DelayhwError, match="bad.npz: audio: the encoding gives"):
        save_input(bad, data.spikes[:, 1:], data.labels, audio=data.audio)
    np.savez(bad, spikes=data.spikes, audio=np.array('{"format": "x"'))
    with pytest.raises(DelayhwError, match="bad.npz: audio: not valid JSON"):
        load_input(bad)
    np.savez(bad, spikes=data.spikes, audio=np.array(json.dumps({"format": "x"})))
    with pytest.raises(DelayhwError, match="bad.npz: audio: audio encoding: format"):
        load_input(bad)
    np.savez(bad, spikes=data.spikes, files=np.array([1, 2]))
    with pytest.raises(DelayhwError, match="bad.npz: files: must be a 1-D string array"):
        load_input(bad)


# ----------------------------------------------------------------------------- bad input


def bad_cases(tmp_path):
    """(argument, rule) of every bad input, each in its own folder."""
    cases = []

    def folder(name):
        root = tmp_path / name
        write(root / "a" / "ok.wav", sound("low", 0.2, 1))
        write(root / "b" / "ok.wav", sound("high", 0.2, 2))
        return root

    root = folder("nonaudio")
    (root / "a" / "notes.txt").write_text("hello")
    cases.append((root, "notes.txt: not an audio file (a label folder holds only recordings"))
    root = folder("empty")
    (root / "a" / "e.wav").write_bytes(b"")
    cases.append((root, "e.wav: empty file (0 bytes), not a recording"))
    root = folder("zero")
    write(root / "a" / "z.wav", np.zeros(0, dtype=np.int16))
    cases.append((root, "z.wav: zero-length recording"))
    root = tmp_path / "flat"
    write(root / "x.wav", sound("low", 0.2, 1))
    cases.append((root, "flat: no label folders"))
    root = folder("nolabels")
    (root / "c").mkdir()
    cases.append((root, "nolabels/c: label folder without recordings"))
    root = folder("corrupt")
    (root / "a" / "c.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk")
    cases.append((root, "c.wav: corrupt or unsupported audio header"))
    root = folder("loose")
    write(root / "x.wav", sound("low", 0.2, 1))
    cases.append((root, "loose/x.wav: a recording beside the label folders has no label"))
    cases.append((tmp_path / "missing", "missing: no such file or folder"))
    return cases


@pytest.mark.parametrize("case", range(8))
def test_every_bad_input_is_one_line_naming_the_file_and_rule(tmp_path, capsys, case):
    argument, rule = bad_cases(tmp_path)[case]
    assert main(["encode", str(argument), "--out", str(tmp_path / "x.npz")]) == 2
    one_error_line(capsys, rule)
    assert not (tmp_path / "x.npz").exists()


def test_a_recording_over_the_memory_budget_is_refused_before_reading(tmp_path, capsys,
                                                                      monkeypatch):
    write(tmp_path / "d" / "a" / "short.wav", sound("low", 0.2, 1))
    write(tmp_path / "d" / "b" / "long.wav", sound("high", 2.0, 2))
    monkeypatch.setenv("DELAYHW_MEMORY_BUDGET", "100K")

    def no_reading(*a, **k):
        raise AssertionError("samples read before the memory check")
    monkeypatch.setattr(sf, "read", no_reading)
    assert main(["encode", str(tmp_path / "d"), "--out", str(tmp_path / "x.npz")]) == 2
    one_error_line(capsys, "long.wav: samples: reading and encoding its 16000 frames (2.0 s "
                           "at 8000 Hz, 1 channel(s)) needs about")
    monkeypatch.undo()
    assert main(["encode", str(tmp_path / "d"), "--out", str(tmp_path / "x.npz")]) == 0


# ----------------------------------------------------------------------------- train, classify


def test_train_on_folders_records_the_encoding_of_the_training_folder(folders, trained):
    train, test = folders
    model = load_model(trained)
    enc, classes = model_audio(model, "m.npz")
    recordings, _ = scan([train])
    assert enc == design_encoding(RATE, [r.seconds for r in recordings])
    both, _ = scan([train, test])
    assert enc != design_encoding(RATE, [r.seconds for r in both])   # test never chose it
    assert classes == CLASSES and model.n_inputs == enc.n_channels
    written = load_input(trained.with_name("m.test.npz"), model)
    assert written.audio == enc and written.classes == CLASSES
    assert written.files == tuple(str(r.path) for r in scan([test])[0])
    log = json.loads(trained.with_name("m.log.json").read_text())
    assert log["task"]["train"] == 13 and log["task"]["test"] == 6


def test_classify_golden_prints_each_recording_and_the_accuracy(folders, trained, tmp_path,
                                                                capsys):
    _, test = folders
    out = tmp_path / "r.csv"
    single = test / "high" / "r1.wav"
    assert main(["classify", str(trained), str(test), str(single), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    model = load_model(trained)
    enc, _ = model_audio(model)
    recordings, _ = scan([test, single], CLASSES)
    spikes = np.stack([encode(read_recording(r.path, enc), enc) for r in recordings])
    result = golden.run(model, spikes)
    labels = np.array([r.label for r in recordings])
    for k, r in enumerate(recordings):
        pred = CLASSES[result.predictions[k]]
        assert lines[k].startswith(f"{r.path}: {pred}  (true {CLASSES[labels[k]]}")
    right = int((result.predictions == labels).sum())
    assert lines[len(recordings)] == (f"accuracy (golden): {100 * right / 7:.2f}% ({right}/7 "
                                      f"labelled recordings)")
    rows = list(csv.DictReader(out.open()))
    assert [row["file"] for row in rows] == [str(r.path) for r in recordings]
    assert [row["predicted"] for row in rows] == [CLASSES[p] for p in result.predictions]
    assert [int(row["score:low"]) for row in rows] == result.scores[:, 2].tolist()


def test_encode_with_a_model_uses_its_encoding_and_refuses_unknown_classes(folders, trained,
                                                                          tmp_path, capsys):
    _, test = folders
    out = tmp_path / "x.npz"
    assert main(["encode", str(test), "--model", str(trained), "--out", str(out)]) == 0
    enc, _ = model_audio(load_model(trained))
    assert load_input(out).audio == enc
    write(tmp_path / "other" / "low" / "a.wav", sound("low", 0.2, 1))
    write(tmp_path / "other" / "hum" / "a.wav", sound("low", 0.2, 2))
    capsys.readouterr()
    assert main(["encode", str(tmp_path / "other"), "--model", str(trained), "--out",
                 str(tmp_path / "y.npz")]) == 2
    one_error_line(capsys, "other/hum: label folder 'hum' is not a class of the model")


def test_train_refuses_a_test_folder_with_an_unknown_class(folders, tmp_path, capsys):
    train, _ = folders
    write(tmp_path / "t" / "hum" / "a.wav", sound("low", 0.2, 1))
    assert main(["train", "--task", str(train), "--test", str(tmp_path / "t"), "--out",
                 str(tmp_path / "m.npz"), "--epochs", "1", "--quiet"]) == 2
    one_error_line(capsys, "t/hum: label folder 'hum' is not a class of the training folder")


def test_train_refuses_a_folder_task_with_a_test_file(folders, tmp_path, capsys):
    train, _ = folders
    (tmp_path / "t.npz").write_bytes(b"")
    assert main(["train", "--task", str(train), "--test", str(tmp_path / "t.npz"), "--out",
                 str(tmp_path / "m.npz"), "--quiet"]) == 2
    one_error_line(capsys, "t.npz: --test: with --task a folder of recordings, --test must be "
                           "one too")


def test_classify_refuses_a_model_without_an_audio_encoding(folders, trained, tmp_path, capsys):
    from dataclasses import replace
    model = load_model(trained)
    plain = tmp_path / "plain.npz"
    save_model(replace(model, train={"trainer": "x"}), plain)
    assert main(["classify", str(plain), str(folders[1])]) == 2
    one_error_line(capsys, "plain.npz: meta.train.audio: the model records no audio encoding")


@pytest.mark.cocotb
def test_classify_in_verilator_agrees_with_golden(folders, trained, capsys):
    from delayhw.sim.tools import verilator_root
    try:
        verilator_root()
    except Exception:
        pytest.skip("verilator is not installed")
    _, test = folders
    files = [str(test / c / f"r{i}.wav") for c in ("low", "high") for i in (0, 1)]
    assert main(["classify", str(trained), *files, "--engine", "verilator"]) == 0
    out = capsys.readouterr().out
    assert "agreement: RTL == golden, bit for bit (4 samples" in out
    assert "accuracy (verilator):" in out
