"""One call from a task to a hardware model: :func:`train_task`.

Pipeline: load the task's data (for a user's files or folders of recordings,
``test=TEST.npz`` / ``test=TEST_DIR`` is only reported on;
network size, ``d_max``, decays, epochs and batch size are derived from the data by
:func:`.defaults.derive_defaults` unless given) -> float training with learnable delays -> round delays ->
choose widths and scales -> quantisation-aware fine-tuning -> export the model file ->
``delayhw.golden.run`` on the test set -> test input file, NIR file of the float network,
training log (JSON) and plots (PNG).

Outputs for ``out = DIR/NAME.npz`` (``plots_dir`` moves the log and the plots):
``NAME.npz`` (model), ``NAME.test.npz`` (test set as a delayhw input file with labels),
``NAME.nir`` (float network), ``NAME.log.json``, ``NAME.curves.png``, ``NAME.delays.png``,
``NAME.raster.png``. Existing files are never replaced unless ``force``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from delayhw import golden
from delayhw.errors import DelayhwError
from delayhw.formats import save_input, save_model
from delayhw.limits import check_memory, memory_budget
from delayhw.publish import Outputs, check_output_file, show_path
from delayhw.spec import LIMITS, RESETS

from . import data as datasets
from .defaults import derive_defaults
from .kernels import KERNELS

__all__ = ["TrainOptions", "TrainReport", "PRESETS", "TASKS", "train_task", "output_paths",
           "load_task"]

TASKS = ("synthetic", "digits", "shd", "ssc")

#: Per-task defaults; anything not set in :class:`TrainOptions` comes from here. ``file`` is
#: the preset for a user's own input file, whose network size, ``d_max``, decays, epochs and
#: batch size are then derived from the data (:func:`.defaults.derive_defaults`).
PRESETS: dict[str, dict[str, Any]] = {
    # Small enough to simulate cycle-accurately in RTL: 8 inputs, 16 hidden, 4 classes,
    # d_max 14, 8-bit weights. A short hidden time constant (beta 0.1) makes the hidden units
    # coincidence detectors, so temporal structure can only be used through delays. The linear
    # kernel learns this task best (docs/train.md); digits prefers the gaussian.
    "synthetic": dict(hidden=(16,), d_max=14, beta=0.1, beta_out=0.9, delay_kernel="linear",
                      epochs=30, qat_epochs=5, batch_size=64, lr=3e-3, lr_delay=0.2,
                      lr_schedule="cosine", lr_qat=5e-4, label_smoothing=0.0, threads=1),
    "digits": dict(hidden=(32,), d_max=8, beta=0.8, beta_out=0.9, delay_kernel="gaussian",
                   epochs=30, qat_epochs=5, batch_size=64, lr=3e-3, lr_delay=0.2,
                   lr_schedule="cosine", lr_qat=5e-4, label_smoothing=0.0, threads=1),
    "shd": dict(hidden=(128,), d_max=25, beta=0.9, beta_out=0.95, delay_kernel="gaussian",
                epochs=40, qat_epochs=5, batch_size=128, lr=1e-3, lr_delay=0.2,
                lr_schedule="cosine", lr_qat=2e-4, label_smoothing=0.0, threads=None),
    "file": dict(delay_kernel="gaussian", qat_epochs=5, lr=5e-3, lr_delay=0.2,
                 lr_schedule="onecycle", lr_qat=5e-4, label_smoothing=0.1, threads=1),
}
PRESETS["ssc"] = dict(PRESETS["shd"])


@dataclass
class TrainOptions:
    """Everything a run can set; ``None`` means the task preset (:data:`PRESETS`)."""

    epochs: int | None = None
    qat_epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_delay: float | None = None
    lr_qat: float | None = None
    lr_schedule: str | None = None
    label_smoothing: float | None = None
    hidden: tuple[int, ...] | None = None
    d_max: int | None = None
    recurrent: bool = False
    delay_kernel: str | None = None
    beta: float | None = None
    beta_out: float | None = None
    reset: str = "subtract"
    bias: bool = False
    freeze_delays: bool = False
    w_bits: int = 8
    v_bits: int | None = None
    f_bits: int = 8
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    data_dir: str | None = None
    limit: int | None = None
    test: str | None = None
    val_fraction: float | None = None
    select: str | None = None

    def resolved(self, task_kind: str, derived: dict[str, Any] | None = None,
                 has_val: bool = True) -> "TrainOptions":
        """Fill every ``None`` from ``derived`` (values derived from the data), then from the
        task's preset; ``select`` becomes ``best`` with a validation set, else ``last``."""
        preset = {**PRESETS[task_kind], **(derived or {})}
        out = replace(self, **{k: v for k, v in preset.items() if getattr(self, k) is None})
        if out.select is None:
            out = replace(out, select="best" if has_val else "last")
        return out

    def _bad(self, name: str, rule: str) -> None:
        flag = "--" + name.replace("_", "-")
        raise DelayhwError(f"train: {name} ({flag}): {rule}, got {getattr(self, name)!r}")

    def check_split(self) -> "TrainOptions":
        """The options that decide how the data are split, checked before they are loaded."""
        if self.val_fraction is not None and not 0.0 <= self.val_fraction < 1.0:
            self._bad("val_fraction", "must be in [0, 1)")
        return self

    def validate(self) -> "TrainOptions":
        bad = self._bad

        for name in ("w_bits", "f_bits", "v_bits", "d_max"):
            value = getattr(self, name)
            lo, hi = LIMITS[name]
            if value is not None and (not isinstance(value, int) or not lo <= value <= hi):
                bad(name, f"must be an integer in {lo}..{hi} (docs/design.md section 3)")
        for name in ("epochs", "qat_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                bad(name, "must be an integer >= 0")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            bad("batch_size", "must be an integer >= 1")
        if not self.hidden or any(not isinstance(h, int) or not 1 <= h <= 65535
                                  for h in self.hidden):
            bad("hidden", "must be one or more layer sizes in 1..65535")
        if self.recurrent and self.d_max < 1:
            bad("d_max", "a recurrent network needs d_max >= 1")
        if self.delay_kernel not in KERNELS:
            bad("delay_kernel", f"must be one of {KERNELS}")
        for name in ("beta", "beta_out"):
            if not 0.0 <= getattr(self, name) <= 1.0:       # NaN fails too
                bad(name, "must be in 0..1")
        if self.reset not in RESETS:
            bad("reset", f"must be one of {RESETS}")
        for name in ("lr", "lr_delay", "lr_qat"):
            if not 0 <= getattr(self, name) <= 1000:       # NaN fails too
                bad(name, "must be a number in [0, 1000]")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 1 << 32:
            bad("seed", "must be an integer in 0..4294967295")
        if not 0.0 <= self.label_smoothing < 1.0:
            bad("label_smoothing", "must be in [0, 1)")
        if self.lr_schedule not in ("onecycle", "cosine"):
            bad("lr_schedule", "must be 'onecycle' or 'cosine'")
        self.check_split()
        if self.select not in ("best", "last"):
            bad("select", "must be 'best' or 'last'")

        for name in ("threads", "limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                bad(name, "must be an integer >= 1")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            bad("device", "must be auto, cpu or cuda[:N]")
        return self


@dataclass
class TrainReport:
    """What :func:`train_task` produced. Accuracies are on the test set: ``float_accuracy``
    of the float network at the end of float training (delays rounded), ``integer_accuracy``
    of the exported model under ``delayhw.golden.run``."""

    model_path: Path
    test_input_path: Path
    log_path: Path
    nir_path: Path | None
    plots: dict[str, Path]
    float_accuracy: float
    integer_accuracy: float
    soft_accuracy: float
    task: str
    history: list[dict] = field(repr=False, default_factory=list)
    seconds: float = 0.0


def output_paths(out: str | Path, plots_dir: str | Path | None = None,
                 nir: bool = True) -> dict[str, Path]:
    """Every file :func:`train_task` writes for model path ``out``."""
    out = Path(out)
    stem = out.name[:-4] if out.name.endswith(".npz") else out.name
    side = Path(plots_dir) if plots_dir is not None else out.parent
    paths = {"model": out, "test_input": out.parent / f"{stem}.test.npz",
             "log": side / f"{stem}.log.json", "curves": side / f"{stem}.curves.png",
             "delays": side / f"{stem}.delays.png", "raster": side / f"{stem}.raster.png"}
    if nir:
        paths["nir"] = out.parent / f"{stem}.nir"
    return paths


def training_memory(n_inputs: int, steps: int, hidden: tuple[int, ...], n_classes: int,
                    d_max: int, batch_size: int, recurrent: bool = False,
                    eval_batch: int = 256) -> int:
    """Bytes (float32) training and evaluating this network needs at its peak, as
    estimated for the memory budget (delayhw.limits): per connection the weights and
    delays with their gradients and two Adam moments, the per-delay taps and the delay
    kernel's temporaries; per layer the activations kept for backpropagation through
    time (about eight tensors of (batch, T, size) per layer, the delayed input, and with
    recurrence the (batch, size * bins) window of every step); a float batch of inputs.
    Deliberately an upper estimate; it refuses a run before anything is allocated."""
    f32, bins = 4, d_max + 1
    sizes = [n_inputs, *hidden, n_classes]
    batch = max(batch_size, min(eval_batch, 1))
    total = batch * steps * n_inputs * f32
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        synapses = n_in * n_out + (n_out * n_out if recurrent else 0)
        total += synapses * f32 * (8 + 6 * bins)
        total += batch * (steps + d_max) * (n_in + 8 * n_out) * f32
        if recurrent:
            total += batch * steps * n_out * bins * f32
    eval_total = max(batch_size, eval_batch) * steps * sum(sizes) * f32
    return int(total + eval_total)


def output_bytes(splits: datasets.Splits, opts: TrainOptions) -> int:
    """An upper estimate of what :func:`train_task` writes: the test set (uncompressed),
    the model (int16 weights, uint8 delays), the NIR file (float64 weights per delay
    branch, at most two copies of each synapse's weight counted) and 4 MiB of log and plots."""
    sizes = [splits.n_inputs, *opts.hidden, splits.n_classes]
    synapses = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if opts.recurrent:
        synapses += sum(h * h for h in opts.hidden)
    return splits.test.spikes.nbytes + 8 * len(splits.test) + 3 * synapses + \
        16 * synapses + (4 << 20)


def load_task(task: str, opts: TrainOptions, reporter: Any = None) -> datasets.Splits:
    """The data of a task name, of a user's input file, or of a folder of recordings
    (label folders; :func:`.data.audio_folders`, ``reporter`` shows the encoding)."""
    if task in ("synthetic", "digits") and (opts.test is not None
                                           or opts.val_fraction is not None):
        raise DelayhwError(f"train: test / val_fraction (--test, --val-fraction): the built-in "
                           f"task {task} has its own validation and test sets; these options "
                           f"are for input files (and --val-fraction for shd/ssc)")
    if task == "synthetic":
        return datasets.synthetic(seed=opts.seed)
    if task == "digits":
        return datasets.digits(seed=opts.seed)
    if task in ("shd", "ssc"):
        if opts.test is not None:
            raise DelayhwError(f"train: test (--test): --task {task} reads {task}_test.h5 "
                               f"from --data; --test is for input files")
        if opts.data_dir is None:
            raise DelayhwError(f"train: data_dir: --task {task} needs --data DIR holding "
                               f"{task}_train.h5 and {task}_test.h5 (they cannot be downloaded "
                               f"by delayhw)")
        val = {} if opts.val_fraction is None else {"val": opts.val_fraction}
        return datasets.shd(opts.data_dir, task, seed=opts.seed, limit=opts.limit, **val)
    path = Path(task)
    if not path.exists():
        raise DelayhwError(f"{task}: --task: neither a built-in task ({', '.join(TASKS)}) nor "
                           f"an existing input file or folder of recordings")
    if opts.test is not None and Path(opts.test).is_dir() != path.is_dir():
        raise DelayhwError(f"{opts.test}: --test: with --task "
                           f"{'a folder of recordings' if path.is_dir() else 'an input file'}, "
                           f"--test must be {'one too' if path.is_dir() else 'an input file'}")
    if path.is_dir():
        if opts.test is not None:
            return datasets.audio_folders(path, opts.test, seed=opts.seed,
                                          val=opts.val_fraction or 0.0, reporter=reporter)
        val = 0.15 if opts.val_fraction is None else opts.val_fraction
        return datasets.audio_folders(path, None, seed=opts.seed, val=val, test=0.15,
                                      reporter=reporter)
    if opts.test is not None:
        if not Path(opts.test).exists():
            raise DelayhwError(f"{opts.test}: --test: no such file")
        return datasets.train_test_files(path, opts.test, seed=opts.seed,
                                         val=opts.val_fraction or 0.0)
    val = 0.15 if opts.val_fraction is None else opts.val_fraction
    return datasets.user_file(path, seed=opts.seed, val=val, test=0.15)


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, np.generic):
        return x.item()
    return x


def train_task(task: str = "synthetic", out: str | Path = "model.npz", *, quiet: bool = False,
               force: bool = False, plots_dir: str | Path | None = None, nir: bool = True,
               **options: Any) -> TrainReport:
    """Train on ``task`` (``synthetic``, ``digits``, ``shd``, ``ssc``, an input file path or a
    folder of recordings in label folders)
    and write the model file ``out`` plus its companions (module docstring). ``options`` are
    :class:`TrainOptions` fields. Raises :class:`DelayhwError` on bad input."""
    import torch

    from .layers import DelayNet, NetConfig
    from .loop import FitConfig, Reporter, accuracy, fit_float, fit_qat, float_logits
    from .quant import choose_quant, export_model, int_forward

    t_start = time.perf_counter()
    memory_budget()                   # a malformed DELAYHW_MEMORY_BUDGET is refused at once
    unknown = set(options) - {f.name for f in fields(TrainOptions)}
    if unknown:
        raise DelayhwError(f"train: unknown option(s) {sorted(unknown)}")
    if isinstance(options.get("hidden"), int):
        options["hidden"] = (options["hidden"],)
    opts = TrainOptions(**options)
    check_output_file(out, force, flag="--out")     # "dir/new/" is refused, not written as "new"
    paths = output_paths(out, plots_dir, nir)
    test_file = [opts.test] if opts.test is not None else []
    outputs = Outputs(force=force, inputs=[task] + test_file)   # checked now, published at the end
    staged = {key: outputs.file(path, "--out" if key == "model" else "output")
              for key, path in paths.items()}
    kind = task if task in TASKS else "file"
    loading = Reporter(quiet or os.environ.get("RANK", "0") != "0")    # encoding recordings
    splits = load_task(task, opts.check_split(), loading)
    derived = (derive_defaults(len(splits.train), splits.steps, splits.n_inputs,
                               splits.n_classes) if kind == "file" else {})
    given = {k for k in derived if getattr(opts, k) is not None}
    chosen = {k: v for k, (v, _) in derived.items() if k not in given}
    opts = opts.resolved(kind, chosen, has_val=len(splits.val) > 0).validate()
    if opts.select == "best" and len(splits.val) == 0:
        raise DelayhwError("train: select (--select): 'best' picks the epoch by validation "
                           "accuracy and needs a validation set (--val-fraction > 0); the test "
                           "file never selects")
    check_memory(f"train {splits.name}", "network and data", training_memory(
        splits.n_inputs, splits.steps, opts.hidden, splits.n_classes, opts.d_max,
        opts.batch_size, opts.recurrent), "training")
    outputs.reserve(output_bytes(splits, opts), "the model, test set, NIR file and plots")
    device = opts.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise DelayhwError(f"train: device (--device): {device} requested but torch sees no "
                           f"CUDA device (torch {torch.__version__})")
    from .distributed import setup
    rank, world_size, device = setup(device)        # torchrun: data-parallel; else (0, 1)
    reporter = Reporter(quiet or rank != 0)

    with _torch_threads(opts.threads):
        torch.manual_seed(opts.seed)
        config = NetConfig(n_inputs=splits.n_inputs, n_classes=splits.n_classes,
                           hidden=tuple(opts.hidden), d_max=opts.d_max, recurrent=opts.recurrent,
                           kernel=opts.delay_kernel, beta=opts.beta, beta_out=opts.beta_out,
                           reset=opts.reset, bias=opts.bias, learn_delays=not opts.freeze_delays,
                           seed=opts.seed)
        net = DelayNet(config).to(device)
        fit = FitConfig(epochs=opts.epochs, qat_epochs=opts.qat_epochs,
                        batch_size=opts.batch_size, lr=opts.lr, lr_delay=opts.lr_delay,
                        lr_qat=opts.lr_qat, lr_schedule=opts.lr_schedule,
                        label_smoothing=opts.label_smoothing, select=opts.select,
                        seed=opts.seed, device=device, rank=rank, world_size=world_size)
        if not quiet:
            reporter.note(f"task {splits.name}: {len(splits.train)} train / {len(splits.val)} "
                          f"val / {len(splits.test)} test, {splits.n_inputs} inputs x "
                          f"{splits.steps} steps, {splits.n_classes} classes; network "
                          f"{' -> '.join(map(str, [splits.n_inputs, *opts.hidden, splits.n_classes]))}"
                          f"{' recurrent' if opts.recurrent else ''}, d_max {opts.d_max}, "
                          f"kernel {opts.delay_kernel}{' (delays frozen)' if opts.freeze_delays else ''}")
            if derived:
                reporter.note("defaults derived from the data (docs/train.md, 'Defaults'):")
            for name, (value, why) in derived.items():
                reporter.note(f"  {name} = {getattr(opts, name)}: "
                              + ("given" if name in given else f"from the data: {why}"))
            reporter.note(f"  select = {opts.select}: " + (
                "best validation epoch" if opts.select == "best" else
                "last epoch (no validation set)" if len(splits.val) == 0 else "last epoch"))
        history = fit_float(net, splits, fit, reporter)
        soft_acc = accuracy(float_logits(net), splits.test, device=device)
        net.round_delays_()
        float_acc = accuracy(float_logits(net), splits.test, device=device)
        float_net = copy.deepcopy(net)
        spec = choose_quant(net, w_bits=opts.w_bits, f_bits=opts.f_bits, v_bits=opts.v_bits)
        history += fit_qat(net, spec, splits, fit, reporter)
        model = export_model(net, spec)
        result = golden.run(model, splits.test.spikes)
        int_acc = result.accuracy(splits.test.labels)
        with torch.no_grad():
            x = torch.from_numpy(splits.test.spikes).to(device=device, dtype=torch.float32)
            qat_scores = int_forward(net, x, spec).scores.cpu().numpy()
        if not np.array_equal(np.rint(qat_scores).astype(np.int64), result.scores):
            raise RuntimeError("internal error: the QAT integer forward differs from "
                               "delayhw.golden on the exported model")

    meta = {"trainer": "delayhw.train", "task": splits.name, "net": config.as_dict(),
            "delay_kernel": net.kernel.describe(), "quant": spec.describe(),
            "scales": [q.scale for q in spec.layers],
            "float_beta": [float(layer.beta) for layer in net.layers],
            "float_accuracy": float_acc, "integer_accuracy": int_acc, "seed": opts.seed}
    if splits.audio is not None:        # how new recordings must be encoded (model_audio)
        meta["audio"] = splits.audio.encoding.to_json()
        meta["classes"] = list(splits.audio.classes)
    model = replace(model, train=_jsonable(meta))
    if rank != 0:                                   # rank 0 writes every output
        outputs.discard()
        return TrainReport(paths["model"], paths["test_input"], paths["log"], paths.get("nir"),
                           {}, float_acc, int_acc, soft_acc, splits.name, history,
                           time.perf_counter() - t_start)
    save_model(model, staged["model"])
    audio = {} if splits.audio is None else dict(
        classes=splits.audio.classes, files=splits.audio.test_files,
        audio=splits.audio.encoding)
    save_input(staged["test_input"], splits.test.spikes, splits.test.labels, **audio)
    if nir:
        from .nir_io import write_nir
        write_nir(float_net, staged["nir"])

    from . import plots
    plots.training_curves(history, staged["curves"],
                          f"{splits.name}: float {100 * float_acc:.1f}%, "
                          f"integer {100 * int_acc:.1f}% (test)")
    plots.delay_histograms(model, staged["delays"])
    plots.spike_raster(splits.test.spikes[0], [s[0] for s in result.spikes],
                       [model.layers[k].name for k in model.lif_layers], result.scores[0],
                       staged["raster"], f"test sample 0, label {splits.test.labels[0]}, "
                                        f"predicted {result.predictions[0]}")
    seconds = time.perf_counter() - t_start
    report = TrainReport(
        model_path=paths["model"], test_input_path=paths["test_input"], log_path=paths["log"],
        nir_path=paths.get("nir"), plots={k: paths[k] for k in ("curves", "delays", "raster")},
        float_accuracy=float_acc, integer_accuracy=int_acc, soft_accuracy=soft_acc,
        task=splits.name, history=history, seconds=seconds)
    log = {"task": splits.describe(), "options": asdict(opts), "device": device,
           "derived_defaults": {k: {"value": v, "rule": why, "used": k not in given}
                                for k, (v, why) in derived.items()},
           "torch": torch.__version__, "net": config.as_dict(), "fit": fit.as_dict(),
           "quant": spec.describe(), "history": history,
           "results": {"soft_accuracy": soft_acc, "float_accuracy": float_acc,
                       "integer_accuracy": int_acc, "qat_forward_matches_golden": True,
                       "hidden_spike_rate": [float(s.mean()) for s in result.spikes]},
           "outputs": {k: str(v) for k, v in paths.items()}, "seconds": seconds}
    staged["log"].write_text(json.dumps(_jsonable(log), indent=2) + "\n")
    outputs.publish()
    if not quiet:
        reporter.note(f"test accuracy: float {100 * float_acc:.2f}% (soft kernel "
                      f"{100 * soft_acc:.2f}%), integer model (golden) {100 * int_acc:.2f}%  "
                      f"[{seconds:.1f} s]")
        reporter.note(f"wrote {show_path(paths['model'])} and "
                      f"{', '.join(show_path(p.name) for k, p in paths.items() if k != 'model')}")
    return report
