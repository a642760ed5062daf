"""Trainer speed and accuracy against the DCLS authors' delay layer, in one run.

For each task (the `synthetic` delay task and scikit-learn `digits`, each with its preset
network from delayhw.train.api.PRESETS, feedforward, but every connection with delays up to
`--d-max`, default 25: the delay papers' SHD range), the same network is trained twice from
the same initial weights and delays, with the same loop, LIF dynamics, optimiser, learning
rates, epochs, kernel-width schedule and thread count:

  delayhw  — delayhw.train's DelayedLinear (gaussian spreading, sigma d_max/2 -> 0.5, then
             straight-through rounded delays), rounded at the end; the trainer's fast path
             (delay_matmul, lif_scan, leaky_trace);
  dcls     — every DelayedLinear replaced by the `dcls` package's Dcls1d (version "gauss",
             kernel_count 1, dilated_kernel_size d_max + 1, SIG frozen and decayed by the same
             schedule, as in Hammouamri et al. 2023), positions rounded at the end (evaluated
             with one-hot integer delays, as the hardware would run them). Its LIF layers and
             readout are delayhw's, so they run the same fast lif_scan / leaky_trace.

Also timed (not trained): `delayhw_reference`, the same delayhw network on the reference path
(delayhw.train.layers.reference_path: delay_conv on full taps, per-step autograd loops; the
trainer before issue 22).

Time per epoch: best of `--repeats` interleaved single training epochs of each (same batches),
in each half of the schedule (wide kernel / final kernel), averaged over the two halves; both
the process CPU time (the headline: on a shared machine wall time mostly measures the other
processes) and the wall time. Accuracy: test set, after full training, mean and std over
`--seeds` (default 3) starts, each shared by both (one seed's accuracy moves by several
test samples with float rounding alone). For delayhw also the exported integer model's
accuracy under delayhw.golden (after QAT). Targets: delayhw at most 0.5x dcls's CPU time
per epoch, mean accuracy no worse by more than 0.5 point. Writes bench/results/train.json.

    python bench/train.py [--tasks synthetic,digits] [--d-max 25] [--repeats 5] [--threads 1]
                          [--seeds 3]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402
from _dcls import dcls_net  # noqa: E402


def one_epoch(net, splits, fit, progress, reference=False):
    """(CPU seconds, wall seconds) of one float training epoch at ``progress`` of the kernel
    schedule (fresh optimiser, same batches every call); ``reference``: on the reference
    path."""
    import torch

    from delayhw.train.layers import reference_path
    from delayhw.train.loop import Reporter, adam, float_logits, train_epoch

    net = copy.deepcopy(net)
    net.set_progress(progress)
    opt = adam([{"params": net.weight_parameters(), "lr": fit.lr},
                {"params": net.delay_parameters(), "lr": fit.lr_delay}])
    with reference_path(reference):
        c0, t0 = time.process_time(), time.perf_counter()
        train_epoch(float_logits(net), splits.train, [opt], fit, np.random.default_rng(0),
                    net.clamp_delays_, Reporter(quiet=True))
        return time.process_time() - c0, time.perf_counter() - t0


def bench_task(task: str, repeats: int, epochs: int | None, d_max: int, seeds: int) -> dict:
    import torch

    from delayhw import golden
    from delayhw.train.api import TrainOptions, load_task
    from delayhw.train.layers import DelayNet, NetConfig
    from delayhw.train.loop import FitConfig, Reporter, accuracy, fit_float, fit_qat, float_logits
    from delayhw.train.quant import choose_quant, export_model

    opts = TrainOptions(epochs=epochs, d_max=d_max).resolved(task).validate()
    splits = load_task(task, opts)
    config = NetConfig(n_inputs=splits.n_inputs, n_classes=splits.n_classes,
                       hidden=tuple(opts.hidden), d_max=opts.d_max, kernel="gaussian",
                       beta=opts.beta, beta_out=opts.beta_out, seed=0)
    fit = FitConfig(epochs=opts.epochs, qat_epochs=opts.qat_epochs, batch_size=opts.batch_size,
                    lr=opts.lr, lr_delay=opts.lr_delay, lr_qat=opts.lr_qat, seed=0)
    torch.manual_seed(0)
    ours = DelayNet(config)
    theirs = dcls_net(ours)

    # interleaved, so both see the same machine load; first half of the schedule (wide
    # kernel) and second half (final kernel; straight-through rounding for delayhw)
    runs = {"delayhw": (ours, False), "dcls": (theirs, False), "delayhw_reference": (ours, True)}
    times = {(name, phase): [] for name in runs for phase in (0.0, 1.0)}
    for _ in range(repeats):
        for phase in (0.0, 1.0):
            for name, (net, reference) in runs.items():
                times[name, phase].append(one_epoch(net, splits, fit, phase, reference))

    def epoch_times(name: str) -> dict:
        out = {}
        for clock, k in (("cpu", 0), ("wall", 1)):
            first, second = (min(t[k] for t in times[name, p]) for p in (0.0, 1.0))
            out[f"epoch_{clock}_seconds_best"] = round((first + second) / 2, 4)
            out[f"epoch_{clock}_seconds_best_halves"] = [round(first, 4), round(second, 4)]
            out[f"epoch_{clock}_seconds_all"] = [round(t[k], 4) for p in (0.0, 1.0)
                                                 for t in times[name, p]]
        return out

    out = {"network": f"{splits.n_inputs} -> {' -> '.join(map(str, opts.hidden))} lif -> "
                      f"{splits.n_classes} readout, d_max {opts.d_max}, feedforward",
           "data": splits.describe(), "epochs": fit.epochs, "batch_size": fit.batch_size,
           "lr": fit.lr, "lr_delay": fit.lr_delay, "accuracy_seeds": list(range(seeds))}
    for name in ("delayhw", "dcls"):
        out[name] = epoch_times(name)
    for seed in range(seeds):               # accuracy: each seed trains both from one start
        torch.manual_seed(seed)
        net = DelayNet(dataclasses.replace(config, seed=seed))
        seed_fit = dataclasses.replace(fit, seed=seed)
        for name, trained in (("delayhw", net), ("dcls", dcls_net(net))):
            t0 = time.perf_counter()
            fit_float(trained, splits, seed_fit, Reporter(quiet=True))
            row = {"train_seconds": round(time.perf_counter() - t0, 2),
                   "test_accuracy_soft_kernel": accuracy(float_logits(trained), splits.test)}
            trained.round_delays_()
            row["test_accuracy_rounded_delays"] = accuracy(float_logits(trained), splits.test)
            if name == "delayhw":
                spec = choose_quant(trained)
                fit_qat(trained, spec, splits, seed_fit, Reporter(quiet=True))
                row["test_accuracy_integer_golden"] = golden.run(
                    export_model(trained, spec), splits.test.spikes).accuracy(splits.test.labels)
            out[name].setdefault("by_seed", []).append(row)
    for name in ("delayhw", "dcls"):
        by_seed = out[name]["by_seed"]
        for key in (k for k in by_seed[0] if "accuracy" in k):
            values = [100 * r[key] for r in by_seed]
            out[name][key + "_mean_pct"] = round(float(np.mean(values)), 2)
            out[name][key + "_std_pct"] = round(float(np.std(values)), 2)
    out["delayhw_reference"] = epoch_times("delayhw_reference")
    for clock in ("cpu", "wall"):
        key = f"epoch_{clock}_seconds_best"
        suffix = "" if clock == "cpu" else "_wall"
        out["delayhw_over_dcls_epoch_time" + suffix] = round(
            out["delayhw"][key] / out["dcls"][key], 3)
        out["delayhw_over_reference_epoch_time" + suffix] = round(
            out["delayhw"][key] / out["delayhw_reference"][key], 3)
    key = "test_accuracy_rounded_delays_mean_pct"
    out["accuracy_delayhw_minus_dcls_points"] = round(out["delayhw"][key] - out["dcls"][key], 2)
    out["float_minus_integer_points"] = round(
        out["delayhw"][key] - out["delayhw"]["test_accuracy_integer_golden_mean_pct"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="synthetic,digits")
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs of each, interleaved")
    ap.add_argument("--epochs", type=int, help="override the presets' epochs")
    ap.add_argument("--d-max", type=int, default=25,
                    help="largest delay of every connection (default 25, the SHD range)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (presets use 1)")
    ap.add_argument("--seeds", type=int, default=3,
                    help="accuracy: both trained from seeds 0..N-1 (mean and std)")
    args = ap.parse_args()
    import DCLS  # noqa: F401  (the `dcls` distribution; fail early if it is missing)
    import torch
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    tasks = {t: bench_task(t, args.repeats, args.epochs, args.d_max, args.seeds)
             for t in args.tasks.split(",")}
    import importlib.metadata as md
    write_result("train", {
        "command": "python bench/train.py " + " ".join(sys.argv[1:]),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "dcls_version": md.version("dcls"),
        "loadavg_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "epoch_time_clock": "process CPU time (wall time beside it, *_wall)",
        "targets": {"delayhw_over_dcls_epoch_time_max": 0.5,
                    "accuracy_delayhw_minus_dcls_points_min": -0.5,
                    "float_minus_integer_points_max": 1.0},
        "tasks": tasks})


if __name__ == "__main__":
    main()
