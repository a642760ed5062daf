import sys
from pathlib import Path

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
