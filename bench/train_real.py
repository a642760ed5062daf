"""The trainer on real tasks with their own train/test split, defaults only (issue 12).

For each task in ``../shared/data`` (``NAME_train.npz`` + ``NAME_test.npz``), seeds 0..N-1,
``delayhw.train.api.train_task(TRAIN, test=TEST, seed=s)`` with these variants:

  default  no option at all (the defaults derived from the data, docs/train.md)
  frozen   ``freeze_delays=True`` (the same network, every delay 0)
  dmax15   ``d_max=15`` (4-bit delays)
  dmax31   ``d_max=31`` (5-bit delays)
  before   main's trainer before issue 12: the old input-file preset passed as options
           (32 hidden, d_max 8, beta 0.8/0.9, 30 epochs, batch 64, cosine lr 3e-3)

Reported per task and variant: float test accuracy (delays rounded), integer test accuracy
of the exported model under ``delayhw.golden`` (mean and std over seeds), training seconds
and seconds per float epoch. The test file is only evaluated. The DCLS recipe's figures from
``../shared/data/README.md`` are copied beside them (measured there, not here).

Jobs run in ``--jobs`` worker processes (default 2), each with one torch thread. Results of
finished jobs are kept in ``bench/results/train_real.jobs.json`` so an interrupted run can go
on (``--resume``). Writes ``bench/results/train_real.json`` and ``train_real.png``.

    python bench/train_real.py [--seeds 3] [--variants default,frozen,...] [--jobs 2]
    python bench/train_real.py --data DIR --tasks a,b --name NAME   # other tasks (no reference)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_result  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

#: The old (main, before issue 12) preset for an input file, as options.
BEFORE = dict(hidden=(32,), d_max=8, beta=0.8, beta_out=0.9, delay_kernel="gaussian",
              epochs=30, qat_epochs=5, batch_size=64, lr=3e-3, lr_delay=0.2,
              lr_schedule="cosine", lr_qat=5e-4, label_smoothing=0.0)
VARIANTS = {"default": {}, "frozen": {"freeze_delays": True}, "dmax15": {"d_max": 15},
            "dmax31": {"d_max": 31}, "before": BEFORE}

#: ../shared/data/README.md, DCLS recipe (float, 2 seeds): learned delays / rounded / no delays.
DCLS_REFERENCE = {"gunpoint": {"dcls_learned": 94.7, "dcls_rounded": 95.0, "snn_no_delays": 91.0},
                  "arrowhead": {"dcls_learned": 71.4, "dcls_rounded": 69.7,
                                "snn_no_delays": 68.6},
                  "acsf1": {"dcls_learned": 41.5, "dcls_rounded": 39.5, "snn_no_delays": 42.0}}


def run_job(task: str, variant: str, seed: int, data: str = str(DATA)) -> dict:
    """One training run in a worker process (one torch thread), on
    ``data/TASK_{train,test}.npz``."""
    import torch
    torch.set_num_threads(1)
    from delayhw.train.api import train_task

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = train_task(str(Path(data, f"{task}_train.npz")), Path(tmp) / "m.npz",
                       test=str(Path(data, f"{task}_test.npz")), seed=seed, quiet=True, nir=False,
                       threads=1, **VARIANTS[variant])
        seconds = time.perf_counter() - t0
        log = json.loads(r.log_path.read_text())
    float_epochs = [h["seconds"] for h in r.history if h["phase"] == "float"]
    return {"task": task, "variant": variant, "seed": seed,
            "float_acc": 100 * r.float_accuracy, "int_acc": 100 * r.integer_accuracy,
            "seconds": seconds, "sec_per_epoch": float(np.mean(float_epochs)),
            "epochs": len(float_epochs),
            "options": {k: log["options"][k] for k in ("hidden", "d_max", "beta", "beta_out",
                                                       "epochs", "batch_size", "lr",
                                                       "lr_schedule", "label_smoothing",
                                                       "qat_epochs")}}


def summarise(jobs: list[dict], tasks: list[str], variants: list[str]) -> dict:
    out = {}
    for task in tasks:
        entry: dict = {}
        for v in variants:
            rows = [j for j in jobs if j["task"] == task and j["variant"] == v]
            if not rows:
                continue
            f = np.array([r["float_acc"] for r in rows])
            i = np.array([r["int_acc"] for r in rows])
            entry[v] = {"seeds": [r["seed"] for r in rows],
                        "float_acc": f.round(2).tolist(), "int_acc": i.round(2).tolist(),
                        "float_acc_mean": round(float(f.mean()), 2),
                        "float_acc_std": round(float(f.std()), 2),
                        "int_acc_mean": round(float(i.mean()), 2),
                        "int_acc_std": round(float(i.std()), 2),
                        "sec_per_epoch": round(float(np.mean([r["sec_per_epoch"]
                                                              for r in rows])), 3),
                        "train_seconds_mean": round(float(np.mean([r["seconds"]
                                                                   for r in rows])), 1),
                        "options": rows[0]["options"]}
        if "default" in entry:            # the keys issue 12 names, at the top of each task
            d = entry["default"]
            entry.update({k: d[k] for k in ("int_acc_mean", "int_acc_std", "float_acc_mean",
                                            "float_acc_std", "sec_per_epoch",
                                            "train_seconds_mean")})
        if "frozen" in entry:
            entry["frozen_int_acc_mean"] = entry["frozen"]["int_acc_mean"]
            entry["frozen_float_acc_mean"] = entry["frozen"]["float_acc_mean"]
        entry["reference_dcls_recipe"] = DCLS_REFERENCE.get(task, {})
        out[task] = entry
    return out


def markdown_table(summary: dict, variants: list[str]) -> str:
    """The table of docs/benchmarks.md: integer (golden) and float test accuracy, mean ± std,
    per variant."""
    head = ["task"] + [f"{v} integer / float" for v in variants] + ["DCLS recipe (float)",
                                                                     "s / default run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, e in summary.items():
        cells = [task]
        for v in variants:
            r = e.get(v)
            cells.append("" if r is None else
                         f"{r['int_acc_mean']:.1f} ± {r['int_acc_std']:.1f} / "
                         f"{r['float_acc_mean']:.1f} ± {r['float_acc_std']:.1f}")
        ref = e["reference_dcls_recipe"].get("dcls_learned")
        cells.append("" if ref is None else f"{ref:.1f}")
        cells.append(f"{e['train_seconds_mean']:.0f}" if "train_seconds_mean" in e else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: dict, variants: list[str], path: Path) -> Path:
    from delayhw.plots import pyplot, save
    plt = pyplot()
    tasks = list(summary)
    fig, ax = plt.subplots(figsize=(2.6 + 2.2 * len(tasks), 3.8))
    width = 0.8 / len(variants)
    for k, v in enumerate(variants):
        x = np.arange(len(tasks)) + (k - (len(variants) - 1) / 2) * width
        mean = [summary[t].get(v, {}).get("int_acc_mean", np.nan) for t in tasks]
        std = [summary[t].get(v, {}).get("int_acc_std", 0) for t in tasks]
        ax.bar(x, mean, width, yerr=std, capsize=2, label=f"{v} (integer, golden)")
    for n, t in enumerate(tasks):
        ref = summary[t]["reference_dcls_recipe"].get("dcls_learned")
        if ref is not None:
            ax.hlines(ref, n - 0.45, n + 0.45, colors="k", linestyles="--",
                      label="DCLS recipe (float, README)" if n == 0 else None)
    ax.set(xticks=range(len(tasks)), xticklabels=tasks, ylabel="test accuracy (%)")
    ax.legend(fontsize=7, loc="upper right")
    return save(fig, path, "delayhw train on real tasks, mean ± std over seeds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(DCLS_REFERENCE))
    ap.add_argument("--data", default=str(DATA), metavar="DIR",
                    help="folder with TASK_train.npz / TASK_test.npz (default ../shared/data)")
    ap.add_argument("--name", default="train_real",
                    help="result name: bench/results/NAME.json, NAME.png, NAME.jobs.json")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (1 thread each)")
    ap.add_argument("--resume", action="store_true", help="keep finished jobs of a stopped run")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: summarise the finished jobs of the last run")
    args = ap.parse_args()
    tasks, variants = args.tasks.split(","), args.variants.split(",")
    cache = RESULTS / f"{args.name}.jobs.json"
    resume = args.resume or args.report_only
    done = json.loads(cache.read_text()) if resume and cache.exists() else []
    have = {(j["task"], j["variant"], j["seed"]) for j in done}
    todo = [(t, v, s) for v in variants for t in tasks for s in range(args.seeds)
            if (t, v, s) not in have and not args.report_only]
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0, load_before = time.perf_counter(), os.getloadavg()
    from rich.progress import Progress
    with Progress() as progress, ProcessPoolExecutor(args.jobs) as pool:
        bar = progress.add_task("training runs", total=len(todo))
        futures = {pool.submit(run_job, *job, args.data): job for job in todo}
        for fut in as_completed(futures):
            job = fut.result()
            done.append(job)
            cache.write_text(json.dumps(done, indent=1) + "\n")
            progress.console.print(f"{job['task']:>10} {job['variant']:>8} seed {job['seed']}: "
                                   f"float {job['float_acc']:.1f}% integer {job['int_acc']:.1f}%"
                                   f" ({job['seconds']:.0f} s)")
            progress.advance(bar)
    done = [j for j in done if j["task"] in tasks and j["variant"] in variants]
    summary = summarise(done, tasks, variants)
    png = plot(summary, variants, RESULTS / f"{args.name}.png")
    table = markdown_table(summary, variants)
    import torch
    write_result(args.name, {
        "command": "python bench/train_real.py " + " ".join(sys.argv[1:]),
        "torch": torch.__version__, "torch_threads": 1, "jobs_in_parallel": args.jobs,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "loadavg_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "variants": {k: {kk: list(vv) if isinstance(vv, tuple) else vv for kk, vv in v.items()}
                     for k, v in VARIANTS.items() if k in variants},
        "targets": {"int_acc_mean_at_least_dcls_learned": True,
                    "float_minus_integer_points_max": 1.0, "minutes_per_default_run_max": 3},
        "plot": str(png.relative_to(RESULTS.parent.parent)), "markdown": table,
        "tasks": summary,
        "runs": done})
    print(table)


if __name__ == "__main__":
    main()
