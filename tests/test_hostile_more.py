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

from delayhw import Inputs, netgen, save_model
from delayhw.cli import main
from test_hostile import assert_one_line_error, cli, snapshot, staging_left


@pytest.fixture
def files(tmp_path):
    """A valid model and input (with labels) in tmp_path."""
    model, spikes = netgen.random_case(5, batch=3, steps=6)
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes, np.arange(3) % model.n_outputs).save(tmp_path / "in.npz")
    return model, tmp_path / "m.npz", tmp_path / "in.npz"


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

    def fake_samples(port, model, shape, spikes, *, load=True, timeout=10.0, on_sample=None):
        seen["timeout"] = timeout
        raise runtime.DelayhwError("stop here")
    monkeypatch.setattr(runtime, "open_port", fake_port)
    monkeypatch.setattr(runtime, "run_samples", fake_samples)
    code, _, err = cli(capsys, "run", m, i, "--out", m.parent / "r.npz", "--port",
                       "/dev/null", "--timeout", "1.5")
    assert code == 2 and seen == {"timeout": 1.5}
