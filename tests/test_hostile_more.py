"""Hostile input, second pass (issue 24), classes 2-4 and 6-8: the training memory budget,
imported NIR files, values that wrap, a full disk, options that were silently ignored,
misleading messages. Same rules as tests/test_hostile.py: one line, exit 2, nothing
written or replaced, no traceback, refused before the long work.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from delayhw import Inputs
from test_hostile import assert_one_line_error, cli, files, snapshot, staging_left  # noqa: F401


@pytest.fixture
def no_training(monkeypatch):
    """Loading a built-in task's data (the start of the long work) fails the test."""
    from delayhw.train import data

    def loaded(*a, **k):
        pytest.fail("the data were loaded: the refusal came after the work started")
    monkeypatch.setattr(data, "synthetic", loaded)
    monkeypatch.setattr(data, "digits", loaded)


# ----------------------------------------------------------------------------- 7. ignored options


@pytest.mark.parametrize("task,extra,words", [
    ("synthetic", ["--test", "in.npz"], ["--test", "synthetic"]),
    ("digits", ["--val-fraction", "0.5"], ["--val-fraction", "digits"]),
])
def test_options_a_builtin_task_cannot_use_are_refused(files, capsys, monkeypatch, no_training,
                                                       task, extra, words):
    _, m, _ = files
    monkeypatch.chdir(m.parent)
    before = snapshot(m.parent)
    code, _, err = cli(capsys, "train", "--task", task, "--out", "t.npz", *extra)
    assert code == 2
    assert_one_line_error(err, *words)
    assert snapshot(m.parent) == before and not staging_left(m.parent)


def test_train_out_ending_in_a_slash_is_refused_not_written_as_a_file(tmp_path, capsys,
                                                                     no_training):
    code, _, err = cli(capsys, "train", "--task", "synthetic", "--out", f"{tmp_path}/newdir/")
    assert code == 2
    assert_one_line_error(err, "--out", "ends with '/'")
    assert not list(tmp_path.iterdir())


def test_run_timeout_reaches_the_sample_loop(files, capsys, monkeypatch):
    from contextlib import contextmanager

    from delayhw.boards import runtime
    _, m, i = files
    seen = {}

    @contextmanager
    def fake_port(port, shape, baud, timeout):
        yield object()

    def fake_samples(port, model, shape, spikes, *, load=True, timeout=10.0, on_sample=None,
                     scores_only=False):
        seen["timeout"] = timeout
        raise runtime.DelayhwError("stop here")
    monkeypatch.setattr(runtime, "open_port", fake_port)
    monkeypatch.setattr(runtime, "run_samples", fake_samples)
    code, _, err = cli(capsys, "run", m, i, "--out", m.parent / "r.npz", "--port",
                       "/dev/null", "--timeout", "1.5")
    assert code == 2 and seen == {"timeout": 1.5}


# ----------------------------------------------------------------------------- 8. messages


def small_net(d_max: int = 3, recurrent: bool = False):
    import torch

    from delayhw.train.layers import DelayNet, NetConfig
    torch.manual_seed(0)
    net = DelayNet(NetConfig(4, 2, hidden=(3,), d_max=d_max, recurrent=recurrent))
    net.round_delays_()
    return net


@pytest.fixture
def nir_file(tmp_path):
    from delayhw.train.nir_io import write_nir
    return write_nir(small_net(), tmp_path / "net.nir")


@pytest.mark.parametrize("what", ["missing", "wrong shape"])
def test_export_with_a_bad_input_publishes_nothing(nir_file, files, capsys, what):
    _, m, _ = files
    bad = m.parent / "nope.npz" if what == "missing" else m.parent / "in.npz"  # 5-input model
    before = snapshot(m.parent)
    code, _, err = cli(capsys, "export", nir_file, "--out", m.parent / "x.npz", "--input", bad)
    assert code == 2
    assert_one_line_error(err, str(bad))
    assert snapshot(m.parent) == before and not staging_left(m.parent)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_device_or_fifo_given_as_a_nir_file_is_named(tmp_path, capsys, kind):
    if kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "pipe.nir"
        os.mkfifo(path)
    code, _, err = cli(capsys, "export", path, "--out", tmp_path / "x.npz")
    assert code == 2
    assert_one_line_error(err, str(path), f"is a {kind.replace('fifo', 'FIFO')}")
    assert "no such file" not in err


def test_a_failed_fpga_tool_names_the_kept_logs_not_the_staging_folder(files, capsys,
                                                                       monkeypatch):
    from delayhw.boards import build as build_mod
    _, m, _ = files

    def failing(model, board, directory, **kwargs):
        (directory / "build.log").write_text("yosys: ERROR\n")
        raise build_mod.DelayhwError(f"{directory}: the FPGA tools failed (exit 1); logs are "
                                     f"in {directory}\n--- build.log\nyosys: ERROR")
    monkeypatch.setattr(build_mod, "build", failing)
    out = m.parent / "b"
    code, _, err = cli(capsys, "build", m, "--board", "ulx3s-85f", "-o", out)
    assert code == 2
    assert_one_line_error(err, f"logs are in {out}")
    assert ".delayhw-tmp" not in err and (out / "build.log").exists()


def test_an_unknown_simulated_board_is_one_line_about_port(files, capsys):
    _, m, i = files
    code, out, err = cli(capsys, "run", m, i, "--out", m.parent / "r.npz", "--port", "sim:bogus")
    assert code == 2
    assert_one_line_error(err, "--port", "sim:bogus", "sim:icarus")
    assert "--sim" not in err and not out and not (m.parent / "r.npz").exists()


def test_out_as_a_dangling_symlink_is_refused_before_the_work(files, capsys, monkeypatch):
    from delayhw import golden
    _, m, i = files
    link = m.parent / "r.npz"
    link.symlink_to(m.parent / "missing" / "target.npz")
    monkeypatch.setattr(golden, "run", lambda *a: pytest.fail("the work ran"))
    code, _, err = cli(capsys, "golden", m, i, "--out", link)
    assert code == 2
    assert_one_line_error(err, "symbolic link", "missing")
    assert "another job" not in err and link.is_symlink()


def test_success_lines_escape_control_characters_in_paths(nir_file, capsys):
    out = nir_file.parent / "a\nb.npz"
    code, stdout, _ = cli(capsys, "export", nir_file, "--out", out)
    assert code == 0 and out.exists()
    assert "a\\nb.npz" in stdout and "a\nb" not in stdout
    code, stdout, _ = cli(capsys, "generate", out, "-o", nir_file.parent / "v\nw")
    assert code == 0 and "v\\nw" in stdout and "v\nw" not in stdout


# ----------------------------------------------------------------------------- 4. wrapping


@pytest.mark.parametrize("value", [2 ** 64 - 1, 2 ** 63])
def test_uint64_weights_beyond_int64_are_refused_not_wrapped(files, capsys, value):
    from test_hostile import model_members, npy_bytes, write_zip
    model, _, i = files
    members = model_members(model)
    w = np.abs(model.layers[0].w).astype(np.uint64)
    w.flat[0] = np.uint64(value)
    members = [(n, npy_bytes(w) if n == "l0.w.npy" else b) for n, b in members]
    bad = write_zip(i.parent / "wrap.npz", members)
    code, _, err = cli(capsys, "golden", bad, i, "--out", i.parent / "r.npz")
    assert code == 2
    assert_one_line_error(err, "wrap.npz", "l0.w", str(value))
    assert not (i.parent / "r.npz").exists()


def test_uint64_result_scores_beyond_int64_are_refused(tmp_path):
    from delayhw import DelayhwError, load_result
    from delayhw.formats import write_npz
    scores = np.array([[2 ** 64 - 1, 3]], dtype=np.uint64)
    write_npz(tmp_path / "r.npz", {"scores": scores, "predictions": np.array([0], np.int64)})
    with pytest.raises(DelayhwError, match="scores: value 18446744073709551615"):
        load_result(tmp_path / "r.npz")


# ----------------------------------------------------------------------------- 3. NIR files


def _set_config(key, value):
    def edit(graph):
        import json
        config = json.loads(graph.metadata["config"])
        config[key] = value
        graph.metadata["config"] = json.dumps(config)
    return edit


def _set_meta(node, key, value):
    def edit(graph):
        target = graph.metadata if node is None else graph.nodes[node].metadata
        target[key] = value
    return edit


def _set_attr(node, attr, value):
    def edit(graph):
        setattr(graph.nodes[node], attr, np.full_like(
            np.asarray(getattr(graph.nodes[node], attr), dtype=np.float64), value))
    return edit


NIR_CASES = {
    "config not JSON": (_set_meta(None, "config", "{not json"), "metadata.config"),
    "config not an object": (_set_meta(None, "config", "[1, 2]"), "metadata.config"),
    "config unknown key": (_set_config("bogus", 1), "metadata.config"),
    "unknown kernel": (_set_config("kernel", "bogus"), "metadata.config.kernel"),
    "huge config d_max": (_set_config("d_max", 10 ** 12), "metadata.config.d_max"),
    "bad reset": (_set_meta("hidden0", "reset", "bogus"), "hidden0.metadata.reset"),
    "beta not a number": (_set_meta("hidden0", "beta", "abc"), "hidden0.metadata.beta"),
    "beta NaN": (_set_meta("hidden0", "beta", float("nan")), "hidden0.metadata.beta"),
    "beta infinite": (_set_meta("out", "beta", float("inf")), "out.metadata.beta"),
    "beta huge": (_set_meta("hidden0", "beta", 1e300), "hidden0.metadata.beta"),
    "beta above 1 (not clamped)": (_set_meta("hidden0", "beta", 1.5), "hidden0.metadata.beta"),
    "beta below 0 (not clamped)": (_set_meta("out", "beta", -0.25), "out.metadata.beta"),
    "dt zero": (_set_meta(None, "dt", 0.0), "metadata.dt"),
    "dt NaN": (_set_meta(None, "dt", float("nan")), "metadata.dt"),
    "dt negative": (_set_meta(None, "dt", -1.0), "metadata.dt"),
    "huge delay": (_set_attr("hidden0.ff.delay1", "delay", 1e12), "hidden0.ff.delay1.delay"),
    "NaN delay": (_set_attr("hidden0.ff.delay1", "delay", float("nan")), "hidden0.ff.delay1"),
    "NaN weight": (_set_attr("hidden0.ff.d0", "weight", float("nan")), "hidden0.ff.d0.weight"),
    "infinite bias": (_set_attr("hidden0.ff.d0", "bias", float("inf")), "hidden0.ff.d0.bias"),
}


@pytest.mark.parametrize("case", sorted(NIR_CASES))
def test_every_nir_field_is_validated(tmp_path, capsys, case):
    import nir

    from delayhw.train.nir_io import to_nir
    edit, field = NIR_CASES[case]
    net = small_net(d_max=3)
    graph = to_nir(net)
    assert "hidden0.ff.delay1" in graph.nodes or "delay" not in case
    edit(graph)
    path = tmp_path / "bad.nir"
    nir.write(path, graph)
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "export", path, "--out", tmp_path / "x.npz")
    assert code == 2, err
    assert_one_line_error(err, "bad.nir", field)
    assert snapshot(tmp_path) == before and not staging_left(tmp_path)


def test_a_nir_file_declaring_more_than_the_budget_is_refused_before_reading(
        nir_file, capsys, monkeypatch):
    monkeypatch.setenv("DELAYHW_MEMORY_BUDGET", "1K")
    code, _, err = cli(capsys, "export", nir_file, "--out", nir_file.parent / "x.npz")
    assert code == 2
    assert_one_line_error(err, "net.nir", "memory budget")


def test_a_good_nir_file_still_exports_exactly(nir_file, capsys):
    """The checks refuse nothing delayhw itself writes (round trip through export)."""
    from delayhw import load_model
    code, _, _ = cli(capsys, "export", nir_file, "--out", nir_file.parent / "x.npz")
    assert code == 0 and load_model(nir_file.parent / "x.npz").layers[0].size == 3


# ----------------------------------------------------------------------------- 2. memory budget


@pytest.fixture
def no_fit(monkeypatch):
    """Training (the long work) fails the test if it starts."""
    from delayhw.train import loop
    monkeypatch.setattr(loop, "fit_float", lambda *a, **k: pytest.fail("training started"))


def labelled(tmp_path, batch=12, steps=8, channels=3, labels=None, name="data.npz"):
    rng = np.random.default_rng(0)
    spikes = (rng.random((batch, steps, channels)) < 0.2).astype(np.uint8)
    labels = np.arange(batch) % 2 if labels is None else labels
    Inputs(spikes, np.asarray(labels, dtype=np.int64)).save(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("with_test", [False, True])
def test_a_huge_label_is_refused_before_sizing_anything(tmp_path, capsys, no_fit, with_test):
    labels = np.arange(12) % 2
    labels[3] = 2 ** 40
    data = labelled(tmp_path, labels=labels)
    extra = ["--test", labelled(tmp_path, name="test.npz")] if with_test else []
    code, _, err = cli(capsys, "train", "--task", data, "--out", tmp_path / "m.npz", *extra)
    assert code == 2
    assert_one_line_error(err, "data.npz", "labels", str(2 ** 40))


def test_long_samples_over_the_budget_are_refused_before_training(tmp_path, capsys, no_fit,
                                                                 monkeypatch):
    data = labelled(tmp_path, batch=16, steps=50_000, channels=2)
    monkeypatch.setenv("DELAYHW_MEMORY_BUDGET", "256M")
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "train", "--task", data, "--out", tmp_path / "m.npz")
    assert code == 2
    assert_one_line_error(err, "training", "memory budget", "DELAYHW_MEMORY_BUDGET")
    assert snapshot(tmp_path) == before and not staging_left(tmp_path)


def test_huge_hidden_layers_are_refused_by_the_budget(tmp_path, capsys, no_fit):
    code, _, err = cli(capsys, "train", "--task", "synthetic", "--out", tmp_path / "m.npz",
                       "--hidden", "65535,65535", "--quiet")
    assert code == 2
    assert_one_line_error(err, "training", "memory budget")


_PEAK = """
import sys, torch
def hwm():   # this process's peak RSS (ru_maxrss can carry the parent's across fork/exec)
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status')
                if l.startswith('VmHWM'))
from delayhw.train.api import training_memory
from delayhw.train.layers import DelayNet, NetConfig
batch, steps, n_in, hidden, classes, d_max = 32, 2000, 8, (128,), 4, 20
net = DelayNet(NetConfig(n_in, classes, hidden=hidden, d_max=d_max))
opt = torch.optim.Adam(net.parameters())
x = (torch.rand(batch, steps, n_in) < 0.1).float()
before = hwm()
logits, _ = net(x)
logits.sum().backward()
opt.step()
grown = hwm() - before
print(grown, training_memory(n_in, steps, hidden, classes, d_max, batch))
"""


def test_the_training_estimate_covers_what_training_allocates():
    """The estimate bounds the peak memory of a real float training step (forward,
    backward, Adam) of the same size, measured in a fresh process."""
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _PEAK], capture_output=True, text=True,
                         check=True, env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
    grown, estimate = map(int, out.split())
    assert 100 << 20 < grown < estimate, (grown, estimate)   # well above import noise


def test_a_malformed_budget_is_refused_before_any_work(tmp_path, capsys, monkeypatch,
                                                       no_training):
    monkeypatch.setenv("DELAYHW_MEMORY_BUDGET", "lots")
    code, _, err = cli(capsys, "train", "--task", "synthetic", "--out", tmp_path / "m.npz")
    assert code == 2
    assert_one_line_error(err, "DELAYHW_MEMORY_BUDGET", "'lots'")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- 6. disk full


@pytest.fixture
def full_dir(tmp_path):
    """A 512 KiB tmpfs (root only: skipped otherwise), less than any output's reserve."""
    import subprocess
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path, leave: int = 0) -> None:
    """Fill ``directory``'s file system up to ``leave`` bytes."""
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    with open(directory / "filler", "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


@pytest.mark.parametrize("command", ["golden", "cosim"])
def test_result_into_a_full_disk_is_refused_before_the_work(files, full_dir, capsys,
                                                           monkeypatch, command):
    from delayhw import golden
    from delayhw.sim import cosim
    _, m, i = files
    monkeypatch.setattr(golden, "run", lambda *a: pytest.fail("the work ran"))
    monkeypatch.setattr(cosim, "run_rtl", lambda *a, **k: pytest.fail("the RTL ran"))
    extra = ["--sim", "icarus"] if command == "cosim" else []
    code, _, err = cli(capsys, command, m, i, "--out", full_dir / "r.npz", *extra)
    assert code == 2
    assert_one_line_error(err, "not enough free space", "free")
    assert not list(full_dir.iterdir())


def test_generate_into_a_full_disk_is_one_line_and_leaves_nothing(files, full_dir, capsys):
    _, m, _ = files
    fill(full_dir, leave=4096)
    code, _, err = cli(capsys, "generate", m, "-o", full_dir / "v")
    assert code == 2
    assert_one_line_error(err, "No space left on device", "nothing was published")
    assert [p.name for p in full_dir.iterdir()] == ["filler"]


def test_a_full_disk_while_writing_is_one_line_without_root(files, capsys, monkeypatch):
    """The same rule where no tmpfs can be mounted: ENOSPC from the result's write."""
    import errno

    from delayhw import formats
    _, m, i = files

    def full(self, path):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(formats.Result, "save", full)
    before = snapshot(m.parent)
    code, _, err = cli(capsys, "golden", m, i, "--out", m.parent / "r.npz")
    assert code == 2
    assert_one_line_error(err, "No space left on device", "nothing was published")
    assert snapshot(m.parent) == before and not staging_left(m.parent)


def test_train_into_a_full_disk_is_refused_before_training(full_dir, capsys, no_fit):
    code, _, err = cli(capsys, "train", "--task", "synthetic", "--out", full_dir / "m.npz")
    assert code == 2
    assert_one_line_error(err, "not enough free space", "NIR")
    assert not list(full_dir.iterdir())


_WRITE_NIR = """
import sys, torch
from delayhw.train.layers import DelayNet, NetConfig
from delayhw.train.nir_io import write_nir
torch.manual_seed(0)
net = DelayNet(NetConfig(64, 8, hidden=(64,), d_max=20))
net.round_delays_()
try:
    write_nir(net, sys.argv[1])
except OSError as exc:
    print("OSError", exc.errno)
    sys.exit(3)
"""


def test_the_nir_file_into_a_full_disk_is_an_oserror_not_a_crash(full_dir):
    """h5py writing straight to a full disk could crash the process (exit 139); the image
    is now built in memory and written with one ordinary write."""
    import errno
    import subprocess
    import sys
    fill(full_dir, leave=8192)
    run = subprocess.run([sys.executable, "-c", _WRITE_NIR, str(full_dir / "net.nir")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 3 and f"OSError {errno.ENOSPC}" in run.stdout, \
        (run.returncode, run.stderr[-500:])
