"""What CI relies on in tests/conftest.py (issue 13 item 6): the slow slice run on every CI run
(make test-slice) is replayable by seed, spread over the slow test functions, and a failing
or over-time slow test fails the run; a simulator CI promises fails the run when missing
instead of skipping its tests."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from conftest import choose_slow_slice

HERE = Path(__file__).parent


def fake_items():
    """Two big sweeps and two single slow tests, like the real suite."""
    return ([SimpleNamespace(nodeid=f"t_a.py::sweep[{i}]") for i in range(400)]
            + [SimpleNamespace(nodeid=f"t_b.py::other_sweep[{i}]") for i in range(300)]
            + [SimpleNamespace(nodeid="t_c.py::build"), SimpleNamespace(nodeid="t_d.py::train")])


def test_the_slice_is_spread_over_the_slow_functions_and_replayable():
    items = fake_items()
    for seed in range(20):
        chosen = [item.nodeid for item in choose_slow_slice(items, 4, seed)]
        assert len(set(chosen)) == 4
        assert {c.split("[")[0] for c in chosen} == {"t_a.py::sweep", "t_b.py::other_sweep",
                                                     "t_c.py::build", "t_d.py::train"}
        assert chosen == [item.nodeid for item in choose_slow_slice(items, 4, seed)]
    picks = {choose_slow_slice(items, 6, seed)[0].nodeid for seed in range(20)}
    assert len(picks) > 3, "the seed must change the slice"
    assert len(choose_slow_slice(items, 5000, 1)) == len(items)


SUITE = '''
import time
import pytest

@pytest.mark.slow
def test_slow_fails():
    assert 1 == 2

@pytest.mark.slow
def test_slow_hangs():
    time.sleep(30)

@pytest.mark.slow
def test_slow_passes():
    pass

def test_default():
    pass
'''


def run_slice(tmp_path, *args):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_suite.py").write_text(SUITE)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-v",
         "-o", "addopts=-m 'not slow'", "-o", "markers=slow\nslow_slice", "-m", "slow_slice",
         *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_a_failing_or_over_time_slow_test_fails_the_slice(tmp_path):
    run = run_slice(tmp_path, "--slow-slice", "3", "--slow-seed", "5", "--timeout", "2")
    out = run.stdout
    assert run.returncode == 1, out
    assert "test_slow_fails FAILED" in out and "test_slow_passes PASSED" in out
    assert "test_slow_hangs FAILED" in out and "Timeout" in out
    assert "test_default" not in out.split("short test summary")[0].split("collected")[1]
    assert "slow slice (seed 5; replay: pytest --slow-slice 3 --slow-seed 5)" in out


def test_the_slice_alone_passes_when_its_tests_pass(tmp_path):
    slow = [SimpleNamespace(nodeid=f"test_suite.py::test_slow_{name}")
            for name in ("fails", "hangs", "passes")]          # in collection order
    seed = next(seed for seed in range(100)
                if choose_slow_slice(slow, 1, seed)[0].nodeid.endswith("passes"))
    run = run_slice(tmp_path, "--slow-slice", "1", "--slow-seed", str(seed), "--timeout", "20")
    assert run.returncode == 0, run.stdout
    assert "1 passed, 3 deselected" in run.stdout


def test_a_simulator_ci_requires_but_lacks_fails_the_run_instead_of_skipping(tmp_path):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    bare = tmp_path / "bin"             # a PATH without iverilog/vvp
    bare.mkdir()
    env = {**os.environ, "PATH": str(bare), "DELAYHW_REQUIRE_SIMULATORS": "icarus"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                          "-p", "no:xdist", "-q"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 4, out          # pytest's usage error: nothing ran, nothing passed
    assert "DELAYHW_REQUIRE_SIMULATORS names icarus, which is not installed" in out
    env["DELAYHW_REQUIRE_SIMULATORS"] = "modelsim"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                          "-p", "no:xdist", "-q"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 4 and "unknown simulator 'modelsim'" in run.stdout + run.stderr
