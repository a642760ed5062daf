import os
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config):
    """Where CI promises a simulator (DELAYHW_REQUIRE_SIMULATORS=icarus,verilator), a missing
    one fails the run at once instead of silently skipping its tests."""
    import os

    import pytest
    required = [s for s in os.environ.get("DELAYHW_REQUIRE_SIMULATORS", "").split(",") if s]
    if not required:
        return
    from delayhw.sim import tools
    present = {"icarus": tools.icarus_available, "verilator": lambda: _verilator_ok(tools)}
    for sim in required:
        if sim not in present:
            raise pytest.UsageError(f"DELAYHW_REQUIRE_SIMULATORS: unknown simulator {sim!r}")
        if not present[sim]():
            raise pytest.UsageError(f"DELAYHW_REQUIRE_SIMULATORS names {sim}, which is not "
                                    f"installed: its tests would be skipped")


def _verilator_ok(tools) -> bool:
    try:
        return tools.verilator_root().is_dir()
    except Exception:
        return False


# ----------------------------------------------------------------------------- slow slice


def pytest_addoption(parser):
    parser.addoption("--slow-slice", type=int,
                     default=int(os.environ.get("DELAYHW_SLOW_SLICE", "0") or 0),
                     help="also run this many randomly chosen -m slow tests "
                          "(env DELAYHW_SLOW_SLICE; CI runs a few on every run)")
    parser.addoption("--slow-seed", type=int,
                     default=int(os.environ.get("DELAYHW_SLOW_SEED", "0") or 0),
                     help="seed of the slow slice, to replay it (env DELAYHW_SLOW_SEED)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Pick the slow slice (same seed -> same tests, in every xdist worker) and let it pass
    the default ``-m 'not slow'`` filter."""
    count = config.getoption("--slow-slice")
    if count <= 0:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    seed = config.getoption("--slow-seed")
    chosen = random.Random(seed).sample(slow, min(count, len(slow)))
    for item in chosen:
        item.own_markers[:] = [m for m in item.own_markers if m.name != "slow"]
    config.stash[_SLICE] = (seed, [item.nodeid for item in chosen])


_SLICE = pytest.StashKey[tuple]()


def pytest_terminal_summary(terminalreporter, config):
    if _SLICE in config.stash:
        seed, ids = config.stash[_SLICE]
        terminalreporter.write_line(
            f"slow slice (seed {seed}; replay: pytest --slow-slice {len(ids)} --slow-seed "
            f"{seed}): {', '.join(ids)}")
