"""A user's own train/test files (`--task TRAIN.npz --test TEST.npz`), the validation split
and epoch selection, the defaults derived from the data, and the schedule's pieces."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402

from delayhw import load_model  # noqa: E402
from delayhw.cli import main  # noqa: E402
from delayhw.formats import load_input, save_input  # noqa: E402
from delayhw.golden import run as golden_run  # noqa: E402
from delayhw.train import data  # noqa: E402
from delayhw.train.api import train_task  # noqa: E402
from delayhw.train.defaults import derive_defaults  # noqa: E402
from delayhw.train.layers import DelayNet, NetConfig  # noqa: E402
from delayhw.train.loop import (FitConfig, Reporter, accuracy, batch_indices,  # noqa: E402
                                fit_float, float_logits, float_optimizers,
                                train_epoch)

SMALL = ["--epochs", "2", "--qat-epochs", "1", "--hidden", "4", "--d-max", "3", "--quiet",
         "--no-nir"]
SMALL_KW = dict(epochs=2, qat_epochs=1, hidden=(4,), d_max=3, quiet=True, nir=False)


@pytest.fixture
def files(tmp_path):
    sp = data.synthetic(n_train=40, n_val=0, n_test=24, steps=24)
    save_input(tmp_path / "tr.npz", sp.train.spikes, sp.train.labels)
    save_input(tmp_path / "te.npz", sp.test.spikes, sp.test.labels)
    return tmp_path / "tr.npz", tmp_path / "te.npz", sp


def model_arrays(path):
    m = load_model(path)
    return [np.asarray(a) for layer in m.layers for a in (layer.w, layer.d)]


def same_model(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(model_arrays(a), model_arrays(b)))


def test_train_and_test_files_cli_and_api_agree(files, tmp_path):
    tr, te, sp = files
    out = tmp_path / "cli.npz"
    assert main(["train", "--task", str(tr), "--test", str(te), "--out", str(out), *SMALL]) == 0
    log = json.loads((tmp_path / "cli.log.json").read_text())
    # all of TRAIN trains, no validation, TEST only reported
    assert (log["task"]["train"], log["task"]["val"], log["task"]["test"]) == (40, 0, 24)
    assert log["options"]["select"] == "last"
    written = load_input(tmp_path / "cli.test.npz")
    assert np.array_equal(written.spikes, sp.test.spikes)
    assert np.array_equal(written.labels, sp.test.labels)
    r = train_task(str(tr), tmp_path / "api.npz", test=str(te), **SMALL_KW)
    assert same_model(out, r.model_path)
    assert r.float_accuracy == log["results"]["float_accuracy"]
    # the exported model, run by golden on the test file, gives the reported accuracy
    res = golden_run(load_model(out), sp.test.spikes)
    assert res.accuracy(sp.test.labels) == log["results"]["integer_accuracy"]


@pytest.mark.parametrize("val", [0.0, 0.25])
def test_test_file_never_influences_the_model(files, tmp_path, val):
    """Different test spikes and labels (same shape): the exported model is identical."""
    tr, te, sp = files
    rng = np.random.default_rng(5)
    other = tmp_path / "other.npz"
    save_input(other, (rng.random(sp.test.spikes.shape) < 0.3).astype(np.uint8),
               rng.permutation(sp.test.labels))
    extra = {"val_fraction": val, "select": "best"} if val else {}
    a = train_task(str(tr), tmp_path / "a.npz", test=str(te), **SMALL_KW, **extra)
    b = train_task(str(tr), tmp_path / "b.npz", test=str(other), **SMALL_KW, **extra)
    assert same_model(a.model_path, b.model_path)


@pytest.mark.parametrize("val", [0.0, 0.25])
def test_fitting_never_reads_the_test_file(files, tmp_path, monkeypatch, val):
    """Every batch the float and QAT stages read (training, validation, selection) comes
    from the training file; the test file is only read for the report afterwards."""
    from delayhw.train import loop
    tr, te, sp = files
    seen, inside = [], []
    batches, fits = loop._batches, {n: getattr(loop, n) for n in ("fit_float", "fit_qat")}

    def spy_batches(d, *a, **k):
        if inside:
            seen.append(d.spikes)
        return batches(d, *a, **k)

    def fitting(fn):
        def wrapped(*a, **k):
            inside.append(1)
            try:
                return fn(*a, **k)
            finally:
                inside.pop()
        return wrapped

    monkeypatch.setattr(loop, "_batches", spy_batches)
    for name, fn in fits.items():
        monkeypatch.setattr(loop, name, fitting(fn))
    train_task(str(tr), tmp_path / "m.npz", test=str(te), val_fraction=val, **SMALL_KW)
    assert seen and not any(s.shape == sp.test.spikes.shape and np.array_equal(s, sp.test.spikes)
                            for s in seen)
    assert all(s.shape[0] <= 40 for s in seen)


def test_val_fraction_and_select(files, tmp_path, capsys):
    tr, te, _ = files
    r = train_task(str(tr), tmp_path / "v.npz", test=str(te), val_fraction=0.25, **SMALL_KW)
    log = json.loads(r.log_path.read_text())
    assert (log["task"]["train"], log["task"]["val"]) == (30, 10)
    assert log["options"]["select"] == "best"          # the default with a validation set
    chosen = [h["epoch"] for h in log["history"] if h.get("selected")]
    assert len(chosen) == 1
    # 'best' without a validation set is refused: the test file never selects
    assert main(["train", "--task", str(tr), "--test", str(te), "--out",
                 str(tmp_path / "x.npz"), "--select", "best", *SMALL]) == 2
    assert "select (--select): 'best'" in capsys.readouterr().err
    assert main(["train", "--task", str(tr), "--test", str(te), "--out",
                 str(tmp_path / "y.npz"), "--val-fraction", "1.5", *SMALL]) == 2
    assert "--val-fraction: must be a number in [0, 1)" in capsys.readouterr().err
    # without --test: a 70/15/15 split of the one file, as documented
    r = train_task(str(tr), tmp_path / "s.npz", **SMALL_KW)
    log = json.loads(r.log_path.read_text())
    assert (log["task"]["train"], log["task"]["val"], log["task"]["test"]) == (28, 6, 6)


def test_fit_float_select_best_keeps_the_best_validation_epoch():
    sp = data.synthetic(n_train=64, n_val=32, n_test=8, steps=24)
    net = DelayNet(NetConfig(n_inputs=8, n_classes=4, hidden=(6,), d_max=4, seed=1))
    history = fit_float(net, sp, FitConfig(epochs=4, batch_size=16, select="best", seed=1),
                        Reporter(quiet=True))
    best = max((h for h in history if h["integer_delays"]),
               key=lambda h: (h["val_acc"], -h["epoch"]))
    assert [h["epoch"] for h in history if h["selected"]] == [best["epoch"]]
    assert accuracy(float_logits(net), sp.val) == best["val_acc"]


def test_fit_float_follows_the_kernel_width_schedule_on_a_tiny_task():
    # progress (epoch - 1) / 8: sigma d_max/2 = 3 -> 0.5 over the first quarter (epochs 1-3),
    # then fixed; straight-through integer delays from progress 0.5 (epoch 5) on
    sp = data.synthetic(n_train=32, n_val=0, n_test=8, steps=20)
    net = DelayNet(NetConfig(n_inputs=8, n_classes=4, hidden=(4,), d_max=6, seed=0))
    history = fit_float(net, sp, FitConfig(epochs=9, batch_size=16, select="last"),
                        Reporter(quiet=True))
    widths = [h["kernel_width"] for h in history]
    assert widths[:3] == pytest.approx([3.0, 1.75, 0.5])
    assert widths[2:] == [0.5] * 7
    assert [h["integer_delays"] for h in history] == [False] * 4 + [True] * 5


def mismatch(tmp_path, spikes, labels, name="bad.npz"):
    save_input(tmp_path / name, spikes, labels)
    return tmp_path / name


@pytest.mark.parametrize("case, message", [
    ("channels", "te2.npz: spikes: has 7 channels, the training file"),
    ("steps", "te2.npz: spikes: has 20 steps per sample, the training file"),
    ("label", "te2.npz: labels: class 4 does not occur in the training file"),
    ("no_labels", "te2.npz: labels: missing array"),
])
def test_mismatched_files_are_refused(files, tmp_path, capsys, case, message):
    tr, _, sp = files
    s, y = sp.test.spikes, sp.test.labels.copy()
    if case == "channels":
        s = s[:, :, :7]
    elif case == "steps":
        s = s[:, :20]
    elif case == "label":
        y[0] = 4
    save_input(tmp_path / "te2.npz", s, None if case == "no_labels" else y)
    assert main(["train", "--task", str(tr), "--test", str(tmp_path / "te2.npz"), "--out",
                 str(tmp_path / "m.npz"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_training_file_with_a_missing_class_is_refused(files, tmp_path, capsys):
    tr, te, sp = files
    y = sp.train.labels.copy()
    y[y == 2] = 3
    save_input(tmp_path / "tr2.npz", sp.train.spikes, y)
    assert main(["train", "--task", str(tmp_path / "tr2.npz"), "--test", str(te), "--out",
                 str(tmp_path / "m.npz"), *SMALL]) == 2
    assert "tr2.npz: labels: class 2 never occurs" in capsys.readouterr().err


@pytest.mark.parametrize("shape, expected", [
    # n_train, steps, n_inputs, n_classes -> hidden, d_max, beta, batch, epochs
    ((50, 150, 16, 2), ((128,), 25, 0.9, 8, 150)),
    ((100, 146, 16, 10), ((128,), 25, 0.9, 8, 84)),
    ((1257, 24, 64, 10), ((128,), 12, 0.5833, 64, 100)),
    ((20, 10, 3, 40), ((256,), 5, 0.5, 8, 150)),
    ((20, 9, 3, 2), ((128,), 5, 0.5, 8, 150)),
    ((8000, 100, 140, 20), ((128,), 25, 0.9, 64, 30)),
    ((8000, 100, 140, 33), ((256,), 25, 0.9, 64, 30)),
    ((400, 60, 8, 5), ((128,), 25, 0.8333, 32, 150)),
    ((400, 30, 8, 5), ((128,), 15, 0.6667, 32, 150)),
    ((3, 2, 1, 2), ((128,), 1, 0.5, 8, 150)),
])
def test_derived_defaults_follow_the_documented_rule(shape, expected):
    d = derive_defaults(*shape)
    got = tuple(d[k][0] for k in ("hidden", "d_max", "beta", "batch_size", "epochs"))
    assert got == expected
    assert d["beta_out"][0] == d["beta"][0]
    assert all(isinstance(why, str) and why for _, why in d.values())


def test_epoch_rule_respects_the_batch_step_budget():
    # the three UCR tasks: acsf1 (100 x 146, batch 8 -> 13 batches) is cut by the budget
    assert derive_defaults(100, 146, 16, 10)["epochs"][0] == 160_000 // (13 * 146) == 84
    assert derive_defaults(50, 150, 16, 2)["epochs"][0] == 150      # 160000 / (7 x 150) = 152
    # batch 16, 13 batches: 160000 / (13 x 100) = 123 < 154 wanted; long sequences floor at 30
    assert derive_defaults(200, 100, 4, 2)["epochs"][0] == 123
    assert derive_defaults(200, 1000, 4, 2)["epochs"][0] == 30


def test_flags_override_derived_defaults(files, tmp_path):
    tr, te, _ = files
    r = train_task(str(tr), tmp_path / "o.npz", test=str(te), epochs=1, qat_epochs=0,
                   hidden=(5,), batch_size=16, quiet=True, nir=False)
    log = json.loads(r.log_path.read_text())
    rule = derive_defaults(40, 24, 8, 4)
    assert log["options"]["hidden"] == [5] and log["options"]["batch_size"] == 16
    assert log["options"]["epochs"] == 1
    assert log["options"]["d_max"] == rule["d_max"][0] == 12
    assert log["options"]["beta"] == rule["beta"][0]
    assert not log["derived_defaults"]["hidden"]["used"]
    assert log["derived_defaults"]["d_max"]["used"]
    assert load_model(r.model_path).layers[0].size == 5


def test_batch_shards_partition_every_batch():
    rng_seed = 3
    whole = list(batch_indices(23, 8, np.random.default_rng(rng_seed)))
    shards = [list(batch_indices(23, 8, np.random.default_rng(rng_seed), r, 3)) for r in range(3)]
    for b, batch in enumerate(whole):
        merged = np.sort(np.concatenate([s[b] for s in shards]))
        assert np.array_equal(merged, batch)
    assert sorted(np.concatenate(whole).tolist()) == list(range(23))


def test_onecycle_weights_and_cosine_delays():
    net = DelayNet(NetConfig(n_inputs=3, n_classes=2, hidden=(4,), d_max=4))
    cfg = FitConfig(epochs=10, lr=0.01, lr_delay=0.5, lr_schedule="onecycle")
    opts, per_batch, per_epoch = float_optimizers(net, cfg, n_batches=5)
    assert len(opts) == 2 and len(per_batch) == 1 and len(per_epoch) == 1
    assert {id(p) for p in opts[1].param_groups[0]["params"]} == {
        id(p) for p in net.delay_parameters()}
    lrs = []
    for _ in range(50):
        opts[0].step()
        per_batch[0].step()
        lrs.append(opts[0].param_groups[0]["lr"])
    peak = int(np.argmax(lrs))
    assert lrs[peak] == pytest.approx(0.01, rel=0.01) and 13 <= peak <= 15   # 30% of 50
    assert lrs[-1] < 1e-4
    for _ in range(10):
        opts[1].step()
        per_epoch[0].step()
    assert opts[1].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
    # cosine for the weights, and frozen delays: no delay optimiser
    frozen = DelayNet(NetConfig(n_inputs=3, n_classes=2, hidden=(4,), d_max=4,
                                learn_delays=False))
    opts, per_batch, per_epoch = float_optimizers(frozen, FitConfig(lr_schedule="cosine"), 5)
    assert len(opts) == 1 and not per_batch and len(per_epoch) == 1
    with pytest.raises(ValueError):
        float_optimizers(frozen, FitConfig(lr_schedule="step"), 5)
    torch.manual_seed(0)


def test_label_smoothing_is_the_smoothed_cross_entropy():
    """The epoch loss with ``label_smoothing`` e is ``(1 - e) * -log p_y + e * mean_k -log p_k``
    (hand-computed from softmax), and 0 gives the plain cross-entropy."""
    rng = np.random.default_rng(5)
    spikes = (rng.random((6, 4, 3)) < 0.5).astype(np.uint8)
    labels = np.array([0, 1, 2, 0, 1, 2])
    batch = data.SpikeData(spikes, labels)
    scale = torch.nn.Parameter(torch.tensor([[0.7, -1.2, 0.4], [0.3, 0.9, -0.5],
                                             [-0.8, 0.2, 1.1]]))

    def forward(x):
        return x.sum(dim=1) @ scale

    logp = torch.log_softmax(torch.from_numpy(spikes).float().sum(dim=1) @ scale.detach(), 1)
    nll = -logp[torch.arange(6), torch.from_numpy(labels)]
    for e in (0.0, 0.1, 0.3):
        cfg = FitConfig(batch_size=6, label_smoothing=e)
        loss, _ = train_epoch(forward, batch, [], cfg, None, lambda: None, Reporter(quiet=True))
        expected = float(((1 - e) * nll + e * (-logp).mean(dim=1)).mean())
        assert loss == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_defaults_and_range(files, tmp_path, capsys):
    tr, te, _ = files
    r = train_task(str(tr), tmp_path / "o.npz", test=str(te), epochs=1, qat_epochs=0,
                   hidden=(4,), quiet=True, nir=False)
    assert json.loads(r.log_path.read_text())["options"]["label_smoothing"] == 0.1
    assert main(["train", "--task", str(tr), "--test", str(te), "--out",
                 str(tmp_path / "m.npz"), "--label-smoothing", "1", *SMALL]) == 2
    assert "--label-smoothing: must be a number in [0, 1), got 1" in \
        capsys.readouterr().err
