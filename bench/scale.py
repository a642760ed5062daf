"""Scaling out: regression throughput (networks per minute) of `delayhw regress` on local
processes (`-j 2`) against a 2-worker Dask LocalCluster on the same machine, and the
cocotb-test entry point against cocotb's own runner on the same network. Writes
bench/results/scale.json.

Regression: the same cases (seeds 0..N-1) on each executor, after one warm-up case per core
shape so that every run finds every simulator build in the cache (same build state). The
local baseline runs before and after the Dask run, in the same process, and the ratio uses
their mean. The Dask figure includes starting the LocalCluster (reported separately too).

cocotb-test vs runner: the example network, both front ends warm (built once before timing),
best of 3 end-to-end runs each (stimulus written, simulator started, outputs decoded).

Data-parallel training: float-epoch time of `delayhw train --task synthetic` in one process
against `torchrun --nproc-per-node 2` (gloo, one thread per process), single-process
baseline run before and after.

    python bench/scale.py [--networks 16] [--sim verilator] [--epochs 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, write_result  # noqa: E402

from delayhw import netgen  # noqa: E402
from delayhw.sim import cosim, regress  # noqa: E402
from delayhw.sim.tools import icarus_available  # noqa: E402

SHARED_MACHINE_NOTE = (
    "Measured on the 2-core development machine while five other helpers ran their own "
    "builds and tests on it: absolute figures are noisy, and the local baseline is rerun "
    "before and after the Dask run in the same process for that reason; compare ratios.")


def time_regression(settings: regress.Settings, networks: int, executor: str,
                    jobs: int = 2) -> dict:
    tasks = settings.tasks(0, networks)
    start = time.perf_counter()
    rows = regress.run_cases(tasks, executor=executor, jobs=jobs)
    wall = time.perf_counter() - start
    bad = regress.failed(rows)
    if bad:
        raise SystemExit(f"{executor}: {len(bad)} cases failed: {bad[0]}")
    return {"executor": executor, "jobs": jobs, "networks": networks,
            "seconds": round(wall, 2), "networks_per_min": round(60 * networks / wall, 2),
            "case_seconds_mean": round(statistics.mean(r["seconds"] for r in rows), 3)}


def cluster_start_seconds(jobs: int = 2) -> float:
    start = time.perf_counter()
    client = regress.dask_client(None, jobs)
    client.wait_for_workers(jobs)
    wall = time.perf_counter() - start
    cluster = client.cluster
    client.close()
    cluster.close()
    return round(wall, 2)


def regression(networks: int, sim: str) -> dict:
    settings = regress.Settings(sim=sim)
    # warm-up: one case per shape, so every timed run finds every build in the cache
    warm = regress.run_cases(settings.tasks(0, settings.shapes), executor="local", jobs=2)
    assert not regress.failed(warm), warm
    runs = [time_regression(settings, networks, "local"),
            time_regression(settings, networks, "dask"),
            time_regression(settings, networks, "local")]
    local = statistics.mean(r["networks_per_min"] for r in runs if r["executor"] == "local")
    dask = runs[1]["networks_per_min"]
    return {"settings": {k: v for k, v in vars(settings).items()}, "runs": runs,
            "local_cluster_start_seconds": cluster_start_seconds(),
            "local_networks_per_min_mean": round(local, 2),
            "dask_networks_per_min": dask,
            "dask_over_local": round(dask / local, 3)}


def frontends(sim: str) -> dict:
    import cocotb_test.simulator
    from delayhw.sim.cocotbtest import CocotbTestBench
    model = netgen.example_model()
    spikes = netgen.random_spikes(np.random.default_rng(1), 4, 30, model.n_inputs, 0.2)
    with tempfile.TemporaryDirectory(prefix="delayhw-bench-ct-") as tmp:
        bench = CocotbTestBench(model, spikes, Path(tmp) / sim)

        def via_cocotb_test():
            cocotb_test.simulator.run(**bench.run_args(sim))
            return bench.result()

        def via_runner():
            return cosim.run_rtl(model, spikes, sim=sim).result

        t_test, r_test = best_time(via_cocotb_test)
        t_runner, r_runner = best_time(via_runner)
    for r in (r_test, r_runner):
        assert cosim.compare(model, spikes, r) is None
    return {"network": "netgen.example_model(), 4 samples x 30 steps, fifo, 1 lane",
            "cocotb_runner_seconds": round(t_runner, 3),
            "cocotb_test_seconds": round(t_test, 3),
            "cocotb_test_over_runner": round(t_test / t_runner, 3)}


def _float_epoch_seconds(log_path: Path) -> float:
    """Mean wall time of the float epochs after the first (warm-up) one."""
    import json
    epochs = [r["seconds"] for r in json.loads(log_path.read_text())["history"]
              if r["phase"] == "float"][1:]
    return statistics.mean(epochs)


def data_parallel(epochs: int, hidden: int) -> dict:
    """Float-epoch time of `delayhw train` in one process against torchrun with 2 processes
    (gloo on CPU, one thread each), same task, seed and global batch."""
    import os
    import subprocess
    args = ["train", "--task", "synthetic", "--epochs", str(epochs), "--qat-epochs", "0",
            "--hidden", str(hidden), "--threads", "1", "--seed", "0", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out: dict = {"task": f"synthetic (1024 train samples, 8 -> {hidden} -> 4, batch 64), "
                         f"{epochs} float epochs, mean of epochs 2..{epochs}"}
    with tempfile.TemporaryDirectory(prefix="delayhw-bench-ddp-") as tmp:
        runs = {"single": [sys.executable, "-m", "delayhw"],
                "ddp_2proc": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                              "--nproc-per-node", "2", "-m", "delayhw"]}
        for name in ("single", "ddp_2proc", "single"):
            model = Path(tmp) / f"{name}.npz"
            subprocess.run([*runs[name], *args, "--out", str(model), "--force"], env=env,
                           check=True, capture_output=True)
            out.setdefault(f"{name}_epoch_seconds", []).append(
                round(_float_epoch_seconds(model.with_name(f"{name}.log.json")), 3))
    single = statistics.mean(out["single_epoch_seconds"])
    out["ddp_over_single_speedup"] = round(single / out["ddp_2proc_epoch_seconds"][0], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=16)
    parser.add_argument("--sim", default="verilator")
    parser.add_argument("--epochs", type=int, default=6, help="float epochs of the DDP part")
    args = parser.parse_args()
    import os
    sims = ["verilator"] + (["icarus"] if icarus_available() else [])
    load_before = os.getloadavg()[0]
    results = {
        "regression": regression(args.networks, args.sim),
        "cocotb_test_vs_runner": {sim: frontends(sim) for sim in sims},
        "data_parallel_training": {f"hidden_{h}": data_parallel(args.epochs, h)
                                   for h in (16, 128)},
    }
    write_result("scale", {"notes": SHARED_MACHINE_NOTE,
                           "load_average_1min": {"start": load_before,
                                                 "end": os.getloadavg()[0]},
                           **results})


if __name__ == "__main__":
    main()
