"""Tasks and loaders: the synthetic delay task, digits, SHD/SSC HDF5 files written here, and
users' input files."""

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from delayhw import DelayhwError  # noqa: E402
from delayhw.formats import save_input  # noqa: E402
from delayhw.train import data  # noqa: E402


def test_synthetic_classes_differ_only_in_timing():
    sp = data.synthetic(seed=3, n_train=200, n_val=10, n_test=10, noise=0.0, n_inputs=6,
                        n_classes=3, spacing=2, steps=20)
    x, y = sp.train.spikes, sp.train.labels
    assert x.shape == (200, 20, 6) and sp.n_classes == 3
    assert (x.sum(axis=1) == 1).all()                       # one spike per channel, always
    times = x.argmax(axis=1)                                  # (B, channels)
    rel = times - times.min(axis=1, keepdims=True)
    offsets = sorted(range(0, 12, 2))
    for c in range(3):
        r = rel[y == c]
        assert len(r) > 0 and (r == r[0]).all()              # one pattern per class
        assert sorted(r[0].tolist()) == offsets               # a permutation of the offsets
    patterns = {tuple(rel[y == c][0]) for c in range(3)}
    assert len(patterns) == 3
    again = data.synthetic(seed=3, n_train=200, n_val=10, n_test=10, noise=0.0, n_inputs=6,
                           n_classes=3, spacing=2, steps=20)
    assert np.array_equal(again.train.spikes, x)
    other = data.synthetic(seed=4, n_train=200, n_val=10, n_test=10, noise=0.0, n_inputs=6,
                           n_classes=3, spacing=2, steps=20)
    assert not np.array_equal(other.train.spikes, x)


def test_synthetic_rejects_too_few_steps():
    with pytest.raises(DelayhwError, match="steps"):
        data.synthetic(steps=10, n_inputs=8, spacing=2)


def test_latency_code():
    values = np.array([[16, 0, 4, 12]])
    s = data.latency_code(values, 16.0, window=12, steps=15)
    assert s.shape == (1, 15, 4)
    # x fires once at round((1 - x/16) * 11): 16 -> 0, 4 -> 8.25 -> 8, 12 -> 2.75 -> 3; 0 never
    assert np.argwhere(s[0]).tolist() == [[0, 0], [3, 3], [8, 2]]


def test_digits():
    sp = data.digits(seed=1)
    assert sp.n_inputs == 64 and sp.n_classes == 10
    assert len(sp.train) + len(sp.val) + len(sp.test) == 1797
    assert sp.train.spikes.max() == 1 and sp.train.spikes.sum(axis=1).max() == 1


def write_h5(path, samples, labels):
    """A file in the SHD layout: ragged spikes/times (s) and spikes/units, labels."""
    with h5py.File(path, "w") as f:
        vf, vu = h5py.vlen_dtype(np.float32), h5py.vlen_dtype(np.uint16)
        t = f.create_dataset("spikes/times", (len(samples),), dtype=vf)
        u = f.create_dataset("spikes/units", (len(samples),), dtype=vu)
        for i, (times, units) in enumerate(samples):
            t[i] = np.asarray(times, dtype=np.float32)
            u[i] = np.asarray(units, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))


def test_read_spike_h5_bins_pools_and_drops(tmp_path):
    p = tmp_path / "s.h5"
    write_h5(p, [([0.0, 0.015, 0.0149, 0.5, 0.999, 1.2], [0, 3, 3, 699, 10, 5]),
                 ([], [])], [4, 1])
    d = data.read_spike_h5(p, steps=100, duration=1.0, pool=1)
    assert d.spikes.shape == (2, 100, 700) and d.labels.tolist() == [4, 1]
    # bins of 10 ms: 0 -> 0; 0.015 and 0.0149 -> bin 1 (one spike, 0/1); 0.5 -> 50; 0.999 -> 99;
    # 1.2 s is past the duration and dropped
    assert np.argwhere(d.spikes[0]).tolist() == [[0, 0], [1, 3], [50, 699], [99, 10]]
    assert d.spikes[1].sum() == 0
    pooled = data.read_spike_h5(p, steps=10, duration=1.0, pool=5)
    assert pooled.spikes.shape == (2, 10, 140)
    assert np.argwhere(pooled.spikes[0]).tolist() == [[0, 0], [5, 139], [9, 2]]


@pytest.mark.parametrize("broken,field", [
    ("no_labels", "labels"), ("no_units", "spikes/units"), ("lengths", "same length"),
    ("unit_range", "spikes/units\\[0\\]"), ("negative_time", "spikes/times\\[0\\]")])
def test_read_spike_h5_errors_name_file_and_field(tmp_path, broken, field):
    p = tmp_path / "bad.h5"
    samples, labels = [([0.1], [2])], [0]
    if broken == "unit_range":
        samples = [([0.1], [700])]
    if broken == "negative_time":
        samples = [([-0.1], [1])]
    if broken == "lengths":
        labels = [0, 1]
    write_h5(p, samples, labels)
    if broken in ("no_labels", "no_units"):
        with h5py.File(p, "a") as f:
            del f["labels" if broken == "no_labels" else "spikes/units"]
    with pytest.raises(DelayhwError, match=f"bad.h5: .*{field}"):
        data.read_spike_h5(p)


def test_read_spike_h5_not_hdf5(tmp_path):
    p = tmp_path / "x.h5"
    p.write_text("hello")
    with pytest.raises(DelayhwError, match="x.h5: not an HDF5 file"):
        data.read_spike_h5(p)


def test_shd_and_ssc_folders(tmp_path):
    rng = np.random.default_rng(0)

    def samples(n):
        return [(np.sort(rng.random(20)), rng.integers(0, 700, 20)) for _ in range(n)]

    write_h5(tmp_path / "shd_train.h5", samples(20), rng.integers(0, 20, 20))
    write_h5(tmp_path / "shd_test.h5", samples(5), rng.integers(0, 20, 5))
    sp = data.shd(tmp_path, "shd", steps=50, pool=7, val=0.25)
    assert (len(sp.train), len(sp.val), len(sp.test)) == (15, 5, 5)
    assert sp.n_inputs == 100 and sp.steps == 50
    write_h5(tmp_path / "ssc_train.h5", samples(6), [0, 1, 2, 3, 4, 34])
    write_h5(tmp_path / "ssc_valid.h5", samples(3), [1, 2, 3])
    write_h5(tmp_path / "ssc_test.h5", samples(3), [1, 2, 3])
    sp = data.shd(tmp_path, "ssc", steps=20, pool=5)
    assert (len(sp.train), len(sp.val), len(sp.test)) == (6, 3, 3) and sp.n_classes == 35
    with pytest.raises(DelayhwError, match="shd_train.h5: no such file"):
        data.shd(tmp_path / "missing", "shd")


def test_user_file(tmp_path):
    rng = np.random.default_rng(0)
    spikes = (rng.random((40, 10, 3)) < 0.3).astype(np.uint8)
    labels = rng.integers(0, 3, 40)
    save_input(tmp_path / "in.npz", spikes, labels)
    sp = data.user_file(tmp_path / "in.npz", seed=1)
    assert len(sp.train) + len(sp.val) + len(sp.test) == 40 and len(sp.test) == 6
    assert sp.n_classes == int(labels.max()) + 1 and sp.n_inputs == 3
    # every sample lands in exactly one split
    rows = {s.tobytes() for part in (sp.train, sp.val, sp.test) for s in part.spikes}
    assert rows == {s.tobytes() for s in spikes}
    save_input(tmp_path / "nolabels.npz", spikes)
    with pytest.raises(DelayhwError, match="nolabels.npz: labels: missing"):
        data.user_file(tmp_path / "nolabels.npz")
    save_input(tmp_path / "one.npz", spikes, np.zeros(40, dtype=np.int64))
    with pytest.raises(DelayhwError, match="one.npz: labels: need at least 2 classes"):
        data.user_file(tmp_path / "one.npz")
