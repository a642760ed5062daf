"""Data-parallel training under torchrun (2 CPU processes, gloo): the same exported model as
one process for the same seed and global batch, float weights within float tolerance, and
only rank 0 writes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from delayhw import load_model
from delayhw.train.api import train_task
from delayhw.train.distributed import world_from_environment

# a global batch of 45 splits 23/22 across two ranks, and every epoch ends on a partial batch:
# the uneven shards are where averaging the ranks' mean losses would differ
ARGS = {"epochs": 2, "qat_epochs": 1, "batch_size": 45, "seed": 3}


def cli_args(out):
    return ["train", "--task", "synthetic", "--out", str(out), "--epochs", "2",
            "--qat-epochs", "1", "--batch-size", "45", "--seed", "3"]


def float_weights(path):
    import nir
    graph = nir.read(str(path))
    return {k: np.asarray(getattr(node, "weight")) for k, node in sorted(graph.nodes.items())
            if hasattr(node, "weight")}


def test_world_comes_from_torchrun_variables():
    assert world_from_environment({}) == (0, 1, 0)
    assert world_from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, 1)


def test_torchrun_two_processes_export_the_same_model_as_one(tmp_path):
    single = train_task("synthetic", tmp_path / "single.npz", quiet=True, **ARGS)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--standalone", "-m", "delayhw", *cli_args(tmp_path / "ddp.npz")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    log = json.loads((tmp_path / "ddp.log.json").read_text())
    assert (log["fit"]["world_size"], log["fit"]["rank"]) == (2, 0)   # rank 0 wrote the log
    assert run.stdout.count("wrote ") == 1                            # and only rank 0 spoke
    history = json.loads(single.log_path.read_text())["history"]
    assert len(log["history"]) == len(history) == 2 + 2
    for mine, theirs in zip(log["history"], history):   # epoch figures over the whole epoch
        assert mine["val_acc"] == theirs["val_acc"]
        assert mine["train_acc"] == pytest.approx(theirs["train_acc"], abs=2 / 1024)
        if mine["epoch"]:
            assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
    a, b = load_model(single.model_path), load_model(tmp_path / "ddp.npz")
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert np.array_equal(la.w, lb.w) and np.array_equal(la.d, lb.d)
        assert (la.beta, la.threshold, la.v_bits) == (lb.beta, lb.threshold, lb.v_bits)
    fa, fb = float_weights(single.nir_path), float_weights(tmp_path / "ddp.nir")
    assert fa.keys() == fb.keys() and fa
    for k in fa:
        np.testing.assert_allclose(fb[k], fa[k], rtol=1e-4, atol=1e-5)
