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
                     help="also run this many randomly chosen -m slow tests, spread over the "
                          "slow test functions (env DELAYHW_SLOW_SLICE; CI runs a few on every "
                          "run: make test-slice); they are marked slow_slice, so "
                          "-m slow_slice runs only them")
    parser.addoption("--slow-seed", type=int,
                     default=int(os.environ.get("DELAYHW_SLOW_SEED", "0") or 0),
                     help="seed of the slow slice, to replay it (env DELAYHW_SLOW_SEED)")


def choose_slow_slice(slow: list, count: int, seed: int) -> list:
    """``count`` of the ``slow`` test items, spread over the test functions: the functions
    in a random order, one random parametrisation of each in turn, so a small slice covers
    every kind of sweep (the 400 cases of one sweep do not crowd out the single slow tests).
    Depends only on the items' order and ``seed`` (every xdist worker picks the same)."""
    rng = random.Random(seed)
    groups: dict[str, list] = {}
    for item in slow:
        groups.setdefault(item.nodeid.split("[")[0], []).append(item)
    order = sorted(groups)
    rng.shuffle(order)
    pools = [rng.sample(groups[name], len(groups[name])) for name in order]
    chosen = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(pool.pop())
    return chosen


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Pick the slow slice and let it pass the default ``-m 'not slow'`` filter; mark it
    ``slow_slice`` (``-m slow_slice`` runs the slice alone)."""
    count = config.getoption("--slow-slice")
    if count <= 0:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    seed = config.getoption("--slow-seed")
    chosen = choose_slow_slice(slow, count, seed)
    for item in chosen:
        item.own_markers[:] = [m for m in item.own_markers if m.name != "slow"]
        item.add_marker("slow_slice")
    config.stash[_SLICE] = (seed, [item.nodeid for item in chosen])


_SLICE = pytest.StashKey[tuple]()


def pytest_report_collectionfinish(config, start_path, items):
    if _SLICE in config.stash:
        seed, ids = config.stash[_SLICE]
        return [f"slow slice (seed {seed}; replay: pytest --slow-slice {len(ids)} --slow-seed "
                f"{seed}): {', '.join(ids)}"]
    return []


def pytest_terminal_summary(terminalreporter, config):
    if _SLICE in config.stash:
        seed, ids = config.stash[_SLICE]
        terminalreporter.write_line(
            f"slow slice (seed {seed}; replay: pytest --slow-slice {len(ids)} --slow-seed "
            f"{seed}): {', '.join(ids)}")
