"""Co-simulation speed: simulated cycles per second through `delayhw cosim` (cocotb's main
loop and VPI, Python awaiting only the end) against the same RTL free-running with no Python
and no VPI at all (the simulator's own main loop until `$finish`), in the same run, per
simulator.
Targets (issue 22): cosim / free-running >= 0.8 (simulator time), and end to end (Verilog or
its build memo, cached build, stimulus, simulator process, decoding, comparison with the
golden model) over the free-running simulator on a test set (32 samples x 50 steps) >= 0.5.
Cosim and free-running alternate in one run; the load average is recorded.
Writes bench/results/cosim.json.

Network: 64 inputs -> 64 recurrent lif (d_max 16) -> 10 readout, fifo scheme, 1 lane
(~8,800 cycles per step). Verilator runs 4 samples x 50 steps (5 rounds) and the test set
(2 rounds), Icarus 1 sample x 10 steps (3 rounds). Each ratio is given in wall time (the
target's) and in CPU time (the simulator process's own; steadier on a shared machine).

    python bench/cosim.py [--scheme ring] [--lanes N]   (other than fifo/1 lane:
                                                          bench/results/cosim_SCHEME_LANES.json)
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_average, write_result  # noqa: E402
from gateware import model_of  # noqa: E402

from delayhw import netgen  # noqa: E402
from delayhw.gateware.core import Core  # noqa: E402
from delayhw.gateware.shape import SCHEMES, CoreShape  # noqa: E402
from delayhw.gateware.verilog import TOP, convert  # noqa: E402
from delayhw.sim import cosim, runner  # noqa: E402
from delayhw.sim.tools import icarus_available, verilator_env, verilator_root  # noqa: E402

# The same simulation top, with Verilog's own main loop instead of cocotb's (cosim_top makes
# its clock): no VPI, no Python.
FREERUN_TOP = """`timescale 1ns/1ps
module freerun_top;
    wire done;
    wire [63:0] cycles;
    wire [31:0] out_count;
    wire [{status_w}-1:0] status;
    cosim_top #({parameters}) top (.done(done), .cycles(cycles), .out_count(out_count),
                                   .status(status));
    initial begin
        wait (done);
        $display("FREERUN cycles=%0d outputs=%0d", cycles, out_count);
        $finish;
    end
endmodule
"""


def freerun_top(shape: CoreShape) -> str:
    """:data:`FREERUN_TOP` with ``cosim_top``'s parameters, the ones ``delayhw cosim`` builds
    with (:func:`~delayhw.sim.runner.top_parameters`: the wire-format table and the clock
    period)."""
    params = runner.top_parameters(shape)
    return FREERUN_TOP.format(status_w=params["STATUS_W"],
                              parameters=", ".join(f".{k}({v})" for k, v in params.items()))


def build_freerun(shape: CoreShape, sim: str, directory: Path) -> list[str]:
    """Build the free-running top; return the command that runs it (plusargs appended)."""
    src = directory / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / f"{TOP}.v").write_text(convert(Core(shape)))
    (src / "cosim_top.v").write_text((Path(runner.__file__).parent / "cosim_top.v").read_text())
    (src / "freerun_top.v").write_text(freerun_top(shape))
    sources = [str(src / f) for f in ("freerun_top.v", "cosim_top.v", f"{TOP}.v")]
    if sim == "verilator":
        cmd = [str(verilator_root() / "bin" / "verilator"), "--binary", *runner.VERILATOR_ARGS,
               "--top-module", "freerun_top", "-Mdir", str(directory / "obj"), "-j", "2",
               *sources]
        subprocess.run(cmd, env=verilator_env(), check=True, capture_output=True)
        return [str(directory / "obj" / "Vfreerun_top")]
    subprocess.run(["iverilog", *runner.ICARUS_ARGS, "-o", str(directory / "freerun.vvp"),
                    "-s", "freerun_top", *sources], check=True, capture_output=True)
    return ["vvp", "-n", str(directory / "freerun.vvp")]


def freerun_seconds(command: list[str], stim: Path, out: Path) -> tuple[float, float, int]:
    """Wall and CPU time of one free-running simulator process on ``stim``; its cycle
    count."""
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command + [f"+stim={stim}", f"+out={out}"], capture_output=True,
                          text=True, check=True)
    seconds = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    line = next(l for l in proc.stdout.splitlines() if l.startswith("FREERUN"))
    return seconds, cpu, int(line.split("cycles=")[1].split()[0])


_FREERUN: dict = {}


def measure(sim: str, model, spikes, builds: Path, scheme: str = "fifo", lanes: int = 1,
            rounds: int = 2, end_to_end: bool = False) -> dict:
    """``delayhw cosim``'s path (run_rtl, then compare with the golden model) and the
    free-running simulator (built once per simulator under ``builds``) on the same stimulus,
    alternating, best of ``rounds`` each. With ``rounds`` > 1 a first run builds and warms."""
    shape = CoreShape.from_model(model, lanes, scheme)
    if (sim, shape) not in _FREERUN:
        _FREERUN[sim, shape] = build_freerun(shape, sim, builds / f"{sim}-{len(_FREERUN)}")
    command = _FREERUN[sim, shape]
    with tempfile.TemporaryDirectory(prefix="delayhw-bench-") as tmp:
        tmp = Path(tmp)
        cosim.write_stimulus(tmp / "stim.txt", model, spikes)
        if rounds > 1:
            cosim.run_rtl(model, spikes, sim=sim, scheme=scheme, lanes=lanes)
        run, free_s, free_cpu, e2e_s, cosim_cpu = None, *[float("inf")] * 4
        for _ in range(rounds):
            start = time.perf_counter()
            this = cosim.run_rtl(model, spikes, sim=sim, scheme=scheme, lanes=lanes)
            assert cosim.compare(model, spikes, this.result) is None
            e2e_s = min(e2e_s, time.perf_counter() - start)
            if run is None or this.sim_seconds < run.sim_seconds:
                run = this
            cosim_cpu = min(cosim_cpu, this.sim_cpu_seconds)
            seconds, cpu, free_cycles = freerun_seconds(command, tmp / "stim.txt",
                                                        tmp / "out.txt")
            free_s, free_cpu = min(free_s, seconds), min(free_cpu, cpu)
    assert free_cycles == run.cycles, (free_cycles, run.cycles)
    cosim_cps = run.cycles / run.sim_seconds
    free_cps = free_cycles / free_s
    print(f"{sim}: {run.cycles} cycles; cosim {cosim_cps:,.0f} cycles/s, free-running "
          f"{free_cps:,.0f} cycles/s, ratio {cosim_cps / free_cps:.3f} (CPU time "
          f"{free_cpu / cosim_cpu:.3f}); end to end "
          f"{e2e_s:.2f} s vs free-running {free_s:.2f} s ({free_s / e2e_s:.3f})", flush=True)
    row = {"cycles": run.cycles, "batch": int(spikes.shape[0]), "steps": int(spikes.shape[1]),
           "cosim_sim_seconds": round(run.sim_seconds, 4),
           "cosim_total_seconds": round(run.total_seconds, 3),
           "cosim_phases_seconds": {k: round(v, 3) for k, v in run.phases.items()},
           "cosim_cycles_per_s": round(cosim_cps),
           "freerun_seconds": round(free_s, 4), "freerun_cycles_per_s": round(free_cps),
           "cosim_over_freerun": round(cosim_cps / free_cps, 3), "target_min": 0.8,
           "cosim_cpu_seconds": round(cosim_cpu, 4), "freerun_cpu_seconds": round(free_cpu, 4),
           "cosim_over_freerun_cpu": round(free_cpu / cosim_cpu, 3),
           "load_average": load_average()}
    if end_to_end:
        row.update({"end_to_end_seconds": round(e2e_s, 3),
                    "end_to_end_over_freerun": round(free_s / e2e_s, 3),
                    "end_to_end_target_min": 0.5})
    return row


def main() -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scheme", choices=SCHEMES, default="fifo")
    ap.add_argument("--lanes", type=int, default=1)
    ap.add_argument("--test-set", type=int, default=32,
                    help="samples of the end-to-end run (50 steps each)")
    args = ap.parse_args()
    model = model_of(64, 64, 10, 16, True)
    rng = np.random.default_rng(0)
    results = {"network": f"64 -> 64 recurrent lif (d_max 16) -> 10 readout, {args.scheme}, "
                          f"{args.lanes} lane(s)",
               "scheme": args.scheme, "lanes": args.lanes,
               "cycles_per_step": CoreShape.from_model(model, args.lanes,
                                                       args.scheme).cycles_per_step(),
               "cosim_seconds_measured": "inside the simulator, from clock start to done",
               "freerun_seconds_measured": "wall time of the whole simulator process",
               "end_to_end_seconds_measured": "delayhw.sim.cosim.run_rtl (Verilog or the "
                                              "build memo, cached build, stimulus, simulator "
                                              "process, decoding) plus compare() against the "
                                              "golden model",
               "timing": "cosim and free-running alternating, best of the rounds each (Verilator "
                         "4 samples: 5 rounds, test set: 2, Icarus: 3); wall time (the target's) "
                         "and the simulator process's CPU time beside it (steadier when the "
                         "machine is shared)"}
    builds = Path(tempfile.mkdtemp(prefix="delayhw-bench-freerun-"))
    options = {"scheme": args.scheme, "lanes": args.lanes, "builds": builds}
    results["load_average_at_start"] = load_average()
    results["verilator"] = measure("verilator", model, netgen.random_spikes(rng, 4, 50, 64, 0.2),
                                   rounds=5, **options)
    results["verilator_test_set"] = measure(
        "verilator", model, netgen.random_spikes(rng, args.test_set, 50, 64, 0.2), rounds=2,
        end_to_end=True, **options)
    if icarus_available():
        results["icarus"] = measure("icarus", model, netgen.random_spikes(rng, 1, 10, 64, 0.2),
                                    rounds=3, **options)
    shutil.rmtree(builds, ignore_errors=True)
    default = args.scheme == "fifo" and args.lanes == 1
    write_result("cosim" if default else f"cosim_{args.scheme}_{args.lanes}", results)


if __name__ == "__main__":
    main()
