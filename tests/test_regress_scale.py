"""`delayhw regress` on a Dask LocalCluster: the same summary as local processes, and no case
lost when a worker process dies mid-case."""

import os
import signal
from pathlib import Path

import pytest

from delayhw.cli import main
from delayhw.sim import regress
from delayhw.sim.tools import icarus_available

pytest.importorskip("distributed", reason="the 'scale' extra (dask[distributed]) is not installed")
pytestmark = [pytest.mark.cocotb, pytest.mark.skipif(not icarus_available(),
                                                     reason="iverilog is not installed")]

TINY = ["--sim", "icarus", "--shapes", "2", "--steps", "6", "--max-size", "4", "--batch", "2"]
SETTINGS = regress.Settings(sim="icarus", shapes=2, steps=6, max_size=4, batch=2)


def test_dask_summary_is_identical_to_the_local_one(capsys):
    assert main(["regress", "--seeds", "4", *TINY, "-j", "2"]) == 0
    local = capsys.readouterr()
    assert main(["regress", "--seeds", "4", *TINY, "--executor", "dask", "-j", "2"]) == 0
    dask = capsys.readouterr()
    assert "4/4 networks bit-exact" in local.out
    assert dask.out == local.out                         # table, count, reproducers
    assert "LocalCluster of 2 workers" in dask.err and "4/4" in dask.err   # progress


def die_once_then_run(task):
    """A case that kills its own worker process the first time, after the simulation and
    before its result is sent: the case is lost unless the executor runs it again."""
    row = regress.run_case(task)
    marker = Path(task["marker"])
    if task["seed"] == task["victim"] and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return row


def always_die(task):
    if task["seed"] == task["victim"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return regress.run_case(task)


def tasks_with(tmp_path, victim, seeds=3):
    return [dict(t, marker=str(tmp_path / "killed"), victim=victim)
            for t in SETTINGS.tasks(0, seeds)]


def test_a_worker_killed_mid_case_does_not_lose_the_case(tmp_path):
    done = []
    rows = regress.run_cases(tasks_with(tmp_path, victim=1), executor="dask", jobs=2,
                             case=die_once_then_run, on_row=done.append)
    assert (tmp_path / "killed").exists()                # a worker did die in case 1
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert [r["status"] for r in rows] == ["ok"] * 3, rows   # case 1 ran again
    assert sorted(r["seed"] for r in done) == [0, 1, 2]
    local = regress.run_cases(SETTINGS.tasks(0, 3), executor="local", jobs=1)
    assert regress_summary_text(rows) == regress_summary_text(local)


def test_a_case_that_keeps_killing_workers_is_reported_not_dropped(tmp_path):
    import dask
    # allowed-failures 1: given up at the second death (Dask default 3: at the fourth)
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        rows = regress.run_cases(tasks_with(tmp_path, victim=2), executor="dask", jobs=2,
                                 case=always_die)
    assert [r["seed"] for r in rows] == [0, 1, 2]
    assert [r["status"] for r in rows] == ["ok", "ok", "ERROR"], rows
    assert "case lost" in rows[2]["difference"] and "KilledWorker" in rows[2]["difference"]
    text = regress_summary_text(rows)
    assert "2/3 networks bit-exact" in text
    assert "reproduce seed 2: delayhw regress --start 2 --seeds 1 --shapes 2 --sim icarus" in text


def test_a_broken_local_pool_is_reported_not_dropped(tmp_path):
    rows = regress.run_cases(tasks_with(tmp_path, victim=0, seeds=2), executor="local", jobs=1,
                             case=always_die)
    assert [r["seed"] for r in rows] == [0, 1]
    assert all(r["status"] == "ERROR" and "BrokenProcessPool" in r["difference"] for r in rows)


def test_scheduler_errors_are_one_line(capsys):
    assert main(["regress", "--seeds", "1", *TINY, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "--scheduler: only meaningful with --executor dask" in capsys.readouterr().err
    assert main(["regress", "--seeds", "1", *TINY, "--executor", "dask",
                 "--scheduler", "nonsense://x"]) == 2
    err = capsys.readouterr().err
    assert "--scheduler nonsense://x: cannot connect to a Dask scheduler" in err
    assert "Traceback" not in err


def regress_summary_text(rows):
    from rich.console import Console
    console = Console(width=120, record=True, file=open(os.devnull, "w"))
    for item in regress.summary(rows, SETTINGS):
        console.print(item)
    return console.export_text()
