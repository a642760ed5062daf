"""The simulated board: the board top (core + UART host link, Verilog from Amaranth) in
Verilator or Icarus, its UART bridged to files by ``board_sim.v``, served to the host runtime
as a port (:class:`SimPort`), so ``delayhw run --port sim:verilator`` exercises the same host
code, bytes and gateware as a real board.

The UART runs at a simulation-only baud, :data:`SIM_DIVISOR` clock cycles per bit (a real
board uses its clock / baud): bit-level UART simulation is slow and the link logic does not
depend on the divisor; ``divisor`` builds one at a board's real divisor (bench/boards.py
measures the link that way). One build per (core shape, simulator, divisor), cached like the
co-simulation's.
"""

from __future__ import annotations

import shutil
import threading
import time
from importlib import resources
from pathlib import Path

from amaranth.back import verilog

from delayhw import children
from delayhw.errors import DelayhwError
from delayhw.gateware.board_top import BoardTop
from delayhw.gateware.shape import CoreShape

from . import clock, runner

SIM_DIVISOR = 4
#: the simulated board's sample store (``delayhw run --bench``), bytes, and event buffer, words
SIM_STORE_BYTES, SIM_EVENT_WORDS = 4096, 256
TOP = "delayhw_board"
HDL_TOPLEVEL = "board_sim"
TEST_MODULE = "delayhw.sim.board_tb"


def build(shape: CoreShape, sim: str = "verilator", divisor: int = SIM_DIVISOR) -> runner.Build:
    """The simulator build of the board top of ``shape`` (empty memories: the host loads the
    model over the link) with a UART of ``divisor`` cycles per bit, a sample store of
    :data:`SIM_STORE_BYTES` and an event buffer of :data:`SIM_EVENT_WORDS`, made once and
    cached."""
    runner.check_simulator(sim)
    text = verilog.convert(BoardTop(shape, divisor, store_bytes=SIM_STORE_BYTES,
                                    event_words=SIM_EVENT_WORDS), name=TOP,
                           emit_src=False)
    wrapper = resources.files("delayhw.sim").joinpath("board_sim.v").read_text()
    return runner.cached_build("board", sim, {f"{TOP}.v": text, "board_sim.v": wrapper},
                               HDL_TOPLEVEL,
                               {"DIVISOR": divisor, **clock.verilog_parameters()},
                               {"shape": shape.as_dict(), "divisor": divisor})


class SimPort:
    """A running simulated board, used like a serial port: :meth:`write` bytes to its RX,
    :meth:`read` what it sent on TX. :meth:`close` stops the simulation."""

    def __init__(self, shape: CoreShape, sim: str = "verilator", divisor: int = SIM_DIVISOR, *,
                 build_: runner.Build | None = None, waves: Path | None = None,
                 name: str | None = None, stop_timeout: float = 60.0):
        """``divisor``: clock cycles per UART bit of the simulated board top; ``build_``:
        another build of ``board_sim.v`` around a board top (the synthesised netlist,
        :mod:`delayhw.sim.netlist`), which fixes its own divisor; ``waves``: trace the run
        into this file (Icarus, ``.fst``); ``name``: what messages call the port (default
        ``sim:SIM``); ``stop_timeout``: seconds :meth:`close` waits for the simulation to end."""
        self.stop_timeout = stop_timeout
        self.build = build_ or build(shape, sim, divisor)
        self._name = name or f"sim:{self.build.sim}"
        self.waves = waves
        self.dir = children.temp_dir("delayhw-board-")    # removed on every exit path
        self.rx, self.tx, self.ctl = self.dir / "rx.bin", self.dir / "tx.txt", self.dir / "ctl"
        self.stats_path = self.dir / "stats.json"
        for p in (self.rx, self.ctl):
            p.write_bytes(b"")
        self._rx = open(self.rx, "ab", buffering=0)
        self._tx_offset = 0
        self._pending = ""
        self.error: BaseException | None = None
        self.stats: dict = {}
        self._thread = threading.Thread(target=self._simulate, daemon=True)
        self._thread.start()

    def _simulate(self):
        try:
            plusargs = [f"+rx={self.rx}", f"+tx={self.tx}", f"+ctl={self.ctl}",
                        f"+stats={self.stats_path}"]
            if self.waves is not None and self.build.sim == "icarus":
                plusargs.append(f"+dump={self.waves}")
            self.stats = runner.run_test(self.build, TEST_MODULE, HDL_TOPLEVEL, self.dir,
                                         plusargs, self.stats_path,
                                         waves=self.waves is not None)
        except BaseException as exc:
            self.error = exc

    @property
    def name(self) -> str:
        return self._name

    def write(self, data: bytes) -> None:
        self._check()
        self._rx.write(data)

    def read(self, timeout: float) -> bytes:
        """Bytes the board sent since the last read; waits up to ``timeout`` for the first."""
        deadline = time.monotonic() + timeout
        while True:
            self._check()
            try:
                with open(self.tx, "rb") as f:
                    f.seek(self._tx_offset)
                    chunk = f.read().decode("ascii")
            except FileNotFoundError:
                chunk = ""
            self._tx_offset += len(chunk)
            text = self._pending + chunk
            cut = text.rfind("\n") + 1
            self._pending = text[cut:]
            data = bytes(int(x, 16) for x in text[:cut].split())
            if data or time.monotonic() >= deadline:
                return data
            time.sleep(0.002)

    def _check(self):
        if self.error is not None:
            raise self.error
        if not self._thread.is_alive() and not self.stats:
            raise DelayhwError(f"{self.name}: the simulation ended unexpectedly (see "
                               f"{self.dir / 'sim.log'})")

    def close(self, keep: bool = False, abort: bool = False) -> None:
        """Stop the simulation; its files are kept (and named) when ``keep`` or it failed.
        ``abort`` (interrupted): stop the simulator at once and remove its files."""
        if abort and self._thread.is_alive():
            children.stop_all()
            self._thread.join(10)
        if self._thread.is_alive():
            self.ctl.write_bytes(b"q")
            self._thread.join(self.stop_timeout)
        self._rx.close()
        if not abort and (keep or self.error is not None):
            print(f"{self.name}: simulation files kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        children.release_temp_dir(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        self.close(keep=exc_type is not None)
