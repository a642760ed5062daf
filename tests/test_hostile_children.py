"""Child processes and temporary folders (issue 24, class 5): SIGINT or SIGTERM to a long
command, at a random point, leaves no simulator, FPGA tool or other child running and no
temporary folder behind.

Each command runs with a unique marker in its environment (inherited by every descendant,
whatever its process group) and a private TMPDIR; after it exits, /proc is searched for the
marker and TMPDIR must be empty.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from delayhw import Inputs, children, netgen, save_model
from delayhw.publish import STAGING_PREFIX
from delayhw.sim.tools import icarus_available

PYTHON = sys.executable
MARK = "DELAYHW_TEST_MARK"

#: One simulator cache for the module's runs (builds are slow; the kills are what is tested).
SIM_CACHE = Path(os.environ.get("DELAYHW_SIM_CACHE",
                                Path.home() / ".cache" / "delayhw" / "sim"))

needs_icarus = pytest.mark.skipif(not icarus_available(), reason="iverilog is not installed")


def marked_processes(mark: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment carries ``mark``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if f"{MARK}={mark}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                state = next((line for line in (entry / "status").read_text().splitlines()
                              if line.startswith("State:")), "")
                if "zombie" not in state:
                    found.append((int(entry.name),
                                  (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                                      errors="replace")))
        except OSError:
            continue
    return found


def _default_sigint() -> None:          # as an interactive shell delivers SIGINT
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def case(tmp_path):
    """A model and a long enough input (the simulator runs for seconds), a shared sim cache."""
    model, _ = netgen.random_case(3, batch=1, steps=4)
    rng = np.random.default_rng(0)
    spikes = (rng.random((100, 100, model.n_inputs)) < 0.3).astype(np.uint8)
    save_model(model, tmp_path / "m.npz")
    Inputs(spikes).save(tmp_path / "in.npz")
    return tmp_path


def kill_at(argv: list[str], cwd: Path, delay: float, sig: int, limit: float = 120,
            child: str | None = None) -> str:
    """Run ``delayhw ARGV``, send ``sig`` after ``delay`` s (counted from when a child whose
    command line contains ``child`` runs, if given); assert nothing of it is left. Returns
    its stderr."""
    mark = uuid.uuid4().hex
    tmp = cwd / f"tmp-{mark[:8]}"
    tmp.mkdir()
    env = dict(os.environ, **{MARK: mark, "TMPDIR": str(tmp)})
    env.setdefault("DELAYHW_SIM_CACHE", str(SIM_CACHE))
    proc = subprocess.Popen([PYTHON, "-m", "delayhw", *argv], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    if child is not None:
        deadline = time.monotonic() + 90
        while not any(child in cmd for _, cmd in marked_processes(mark)):
            assert proc.poll() is None and time.monotonic() < deadline, f"no {child} started"
            time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    deadline = time.monotonic() + 0.5     # stopped before the command exits; reaping aside
    while marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = marked_processes(mark)
    for pid, _ in left:                  # do not leave them to the next test either
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    what = f"{argv[0]} after {delay:.1f} s by {signal.Signals(sig).name}"
    assert not left, f"{what}: still running: {left}"
    # torch's own per-user compile cache (torchinductor_USER, made when torch.optim imports
    # torch._dynamo) is shared by every run and not a temporary folder of the command
    left_tmp = [p for p in tmp.iterdir() if not p.name.startswith("torchinductor_")]
    assert not left_tmp, f"{what}: left in TMPDIR: {left_tmp}"
    assert not list(cwd.rglob(f"{STAGING_PREFIX}*")), f"{what}: staging left"
    assert "Traceback" not in err or err.rstrip().endswith("KeyboardInterrupt"), err
    shutil.rmtree(tmp)
    return err


def _wait_for(predicate, seconds: float = 60) -> bool:
    """Poll ``predicate`` until it holds or ``seconds`` pass; its last value."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_children_run_in_their_own_group_and_are_stopped(tmp_path):
    """delayhw.children directly: a child and its grandchild are stopped with their group
    when the caller leaves by an exception."""
    mark = uuid.uuid4().hex
    env = dict(os.environ, **{MARK: mark})
    proc = children.popen(["bash", "-c", "sleep 60 & sleep 60"], env=env)
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    def sleepers() -> int:
        return sum(cmd.startswith("sleep ") for _, cmd in marked_processes(mark))
    # bash forks both sleeps and waits; a loaded machine (CI with -n 2) once took > 5 s
    # to exec them, so wait for the sleeps themselves, not for a count at a fixed time
    _wait_for(lambda: sleepers() >= 2, 60)
    assert sleepers() == 2 and len(marked_processes(mark)) == 3
    children.stop_all()
    assert not marked_processes(mark) and not children.live()


def test_temp_dir_is_registered_and_removed_by_stop_all(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    folder = children.temp_dir("delayhw-x-")
    assert folder.parent == tmp_path and folder.is_dir()
    children.stop_all()
    assert not folder.exists()


def test_each_child_has_its_own_tmpdir_removed_when_it_is_reaped(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    seen = tmp_path / "seen"
    code = children.run(["bash", "-c", f'touch "$TMPDIR/left"; echo "$TMPDIR" > {seen}'],
                        env=dict(os.environ, TMPDIR="/nonexistent"))
    assert code == 0
    child_tmp = Path(seen.read_text().strip())
    assert child_tmp.parent == tmp_path and not child_tmp.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["seen"]


@needs_icarus
def test_icarus_stopped_mid_compile_leaves_no_temporary_files(tmp_path, monkeypatch):
    """Icarus' driver, killed by SIGTERM, leaves its preprocessor files (ivrl*) in TMPDIR; the
    child's own TMPDIR takes them away (a regress killed mid-compile once failed CI so)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    source = tmp_path / "big.v"
    source.write_text("module top(input clk);\n" + "".join(
        f"  reg [31:0] r{i}; always @(posedge clk) r{i} <= r{i} + {i};\n"
        for i in range(20000)) + "endmodule\n")
    proc = children.popen(["iverilog", "-o", str(tmp_path / "x.vvp"), str(source)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: list(tmp_path.rglob("ivrl*")), 30), \
        "iverilog wrote no temporary files"
    children.stop(proc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.v"]


def test_stop_all_cut_short_leaves_the_folders_it_did_not_remove_registered(tmp_path,
                                                                             monkeypatch):
    """A second signal during stop_all's cleanup (raised from inside it) must not lose the
    folders not yet removed: the next stop_all (the command's exit path) removes them."""
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
        children.own_temp_dir(folder)
    real_rmtree, calls = shutil.rmtree, []

    def interrupted_rmtree(path, **kwargs):
        calls.append(path)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real_rmtree(path, **kwargs)
    monkeypatch.setattr(children.shutil, "rmtree", interrupted_rmtree)
    with pytest.raises(KeyboardInterrupt):
        children.stop_all()
    children.stop_all()
    assert not any(folder.exists() for folder in folders)


def test_regress_worker_finishes_its_cleanup_through_a_second_sigterm():
    """The pool sends SIGTERM again to the workers left once one exits: a worker already
    cleaning up after the first must not be cut short by the second."""
    code = """if True:
        import os, signal, time
        from delayhw.sim import regress
        regress._worker_init()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            print("not stopped")
        except regress._Stopped:
            os.kill(os.getpid(), signal.SIGTERM)      # arrives during the cleanup
            time.sleep(0.2)
            print("cleanup finished")
    """
    done = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "cleanup finished"), done.stderr


@needs_icarus
def test_cosim_killed_mid_simulation_leaves_nothing(case):
    rng = random.Random()
    kill_at(["cosim", "m.npz", "in.npz", "--out", "r.npz", "--sim", "icarus"], case,
            rng.uniform(0, 1.5), rng.choice([signal.SIGTERM, signal.SIGINT]), child="vvp")


@needs_icarus
def test_run_on_the_simulated_board_killed_leaves_no_board_folder(case):
    rng = random.Random()
    kill_at(["run", "m.npz", "in.npz", "--out", "r.npz", "--port", "sim:icarus"], case,
            rng.uniform(0, 1.5), signal.SIGTERM, child="vvp")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_long_commands_killed_at_random_points_leave_nothing(case, seed):
    """Every long command, killed at random points (seeded; the seed is in the test id)."""
    rng = random.Random(seed)
    runs = [(["cosim", "m.npz", "in.npz", "--out", "r.npz", "--sim", "icarus"], 15),
            (["run", "m.npz", "in.npz", "--out", "r.npz", "--port", "sim:icarus"], 20),
            (["regress", "--sim", "icarus", "--seeds", "4", "--steps", "8"], 30),
            (["build", "m.npz", "--board", "icebreaker", "-o", "b"], 40),
            (["train", "--task", "synthetic", "--out", "t.npz", "--epochs", "2"], 20)]
    if not icarus_available():
        runs = runs[3:]
    for argv, limit in runs:
        sig = rng.choice([signal.SIGTERM, signal.SIGINT])
        kill_at(argv, case, rng.uniform(0.2, limit), sig, limit=300)


@needs_icarus
@pytest.mark.slow
def test_regress_killed_stops_its_workers_and_their_simulators(case):
    rng = random.Random()
    kill_at(["regress", "--sim", "icarus", "--seeds", "4", "-j", "2", "--steps", "200",
             "--batch", "20", "--shapes", "1"], case, rng.uniform(0, 1.0),
            rng.choice([signal.SIGTERM, signal.SIGINT]), child="vvp")
