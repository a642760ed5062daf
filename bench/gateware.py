"""Gateware cost of every delay scheme, in one run: cycles, synaptic operations per cycle,
memory, and what the SHD-size network gets from them. Writes bench/results/gateware.json,
gateware.png and gateware.md (the tables of docs/benchmarks.md).

1. Formulas (amaranth.sim): five networks from 4 -> 4 -> 2 to 64 -> 32 -> 10, lanes 1/2/4,
   every scheme of the registry, 3 steps of 20% random input: busy cycles of each step
   against the manifest's formula (``CoreShape.cycles_per_step``; ``ring``: with the golden
   model's spike counts), and the bits of every memory the elaborated core holds against
   ``CoreShape.memory_bits`` and docs/design.md section 5's "about" formulas (``fifo``:
   ``n_in x (d_max+1)`` bits of spike history per layer instead of ``S x (d_max+1)`` for
   per-synapse lines; ``ring``: ``N x (d_max+1) x acc_bits``).
2. Burst (amaranth.sim, ``ring``): 512 input channels all spiking in every step into one
   layer of ``N = G * lanes`` units, lanes 1..16, G = 8 (wide layer) and G = 1 (one group:
   the spike expander must deliver a spike every cycle). A synaptic operation (SOP) is one
   weight added into a ring slot, ``512 * N`` per step; figure: SOP per busy cycle of a step
   per lane (key ``sop_per_cycle_per_lane``: the lowest over the runs; target 0.95).
3. fifo vs ring (amaranth.sim): 64 -> 64 recurrent -> 10, d_max 16, 1 and 4 lanes, one
   sample of 12 steps at 5% and 30% input activity: mean busy cycles per step and all
   cycles of the sample, per scheme (target: ring >= 5x fewer cycles than fifo at 5%).
4. SHD size: 700 -> 128 recurrent -> 20, d_max 25 (bench/golden.py's network, threshold
   lowered to 100 so the hidden layer fires at an SHD-like ~6%), input 3% per step, 100
   steps, 8 samples. Per lane count 1..16 and scheme: cycles per step and per sample from
   the formula with the golden model's spike counts plus one cycle per input event and per
   STEP event, the score walk and the clear (checked in Verilator where an Fmax was
   measured), memory bits against the ECP5-85F's block RAM, samples/s at 100 MHz
   (``shd_samples_per_s_at_100mhz``) and at the ECP5-85F Fmax that ``bench/fmax.py``
   measured for that scheme and lane count (``shd_samples_per_s``; the SHD rows of
   bench/results/fmax.json, made by ``python bench/fmax.py --scheme ring --lanes 8 --models
   shd --targets ecp5``, RTLIL from ``delayhw generate``).

Every figure comes from the current gateware and formulas: rerun after a change of either.

    python bench/gateware.py [--quick]     (--quick: fewer lane counts, no Verilator)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_result  # noqa: E402

from delayhw import golden, netgen  # noqa: E402
from delayhw.gateware import protocol, pysim  # noqa: E402
from delayhw.gateware.core import Core, built_memory_bits  # noqa: E402
from delayhw.gateware.shape import SCHEMES, CoreShape  # noqa: E402
from delayhw.spec import Layer, Model  # noqa: E402

SIZES = [  # (n_inputs, hidden, outputs, d_max, recurrent)
    (4, 4, 2, 3, False), (8, 8, 4, 7, True), (16, 16, 4, 15, True), (32, 24, 6, 25, True),
    (64, 32, 10, 25, False),
]
ECP5_85F_BRAM_BITS = 208 * 18 * 1024
BURST_INPUTS = 512
SHD_THRESHOLD = 100         # hidden activity ~6% at 3% input (bench/golden.py's 300: 0.9%)
TARGETS = {"fifo_over_ring_at_5_percent": 5.0, "sop_per_cycle_per_lane": 0.95,
           "shd_samples_per_s": 1000}


#: the benchmarks' network of a given size (also bench/fmax.py's)
model_of = netgen.sized_model


def network_name(model: Model) -> str:
    sizes = [str(model.n_inputs)] + [f"{l.size}{' rec' if l.recurrent else ''}"
                                     for l in model.layers]
    return " -> ".join(sizes) + f", d_max {max(l.d_max for l in model.layers)}"


def check(model: Model, spikes, shape: CoreShape, run: pysim.PySimRun, expected=None) -> None:
    """Every figure below comes from a bit-exact run."""
    expected = expected or golden.run(model, spikes)
    got = protocol.decode_outputs(run.outputs, shape, spikes.shape[0], spikes.shape[1])
    assert protocol.first_difference(expected, got) is None, shape


def step_formula(shape: CoreShape, spikes, expected) -> list[int]:
    """The formula's cycles of every step of sample 0 (``ring`` counts this step's spikes)."""
    return shape.cycles_of_sample(spikes[0], [s[0] for s in expected.spikes])


# ------------------------------------------------------------------------------ 1. formulas


def formulas(lane_counts) -> list[dict]:
    rows = []
    for n_in, hidden, out, d_max, rec in SIZES:
        model = model_of(n_in, hidden, out, d_max, rec)
        spikes = netgen.random_spikes(np.random.default_rng(1), 1, 3, n_in, 0.2)
        expected = golden.run(model, spikes)
        synapses = sum(l.size * l.fan_in for l in model.layers)
        for scheme in SCHEMES:
            for lanes in lane_counts:
                shape = CoreShape.from_model(model, lanes, scheme)
                run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
                check(model, spikes, shape, run, expected)
                formula = step_formula(shape, spikes, expected)
                measured = shape.step_periods(run.step_starts, run.step_dones)
                bits = built_memory_bits(Core(shape, model))
                rows.append({
                    "network": network_name(model), "scheme": scheme, "lanes": lanes,
                    "synapses": synapses,
                    "cycles_per_step_measured": measured,
                    "cycles_per_step_formula": formula,
                    "measured_over_formula": round(max(measured) / max(formula), 4),
                    "memory_bits_built": bits, "memory_bits_formula": shape.memory_bits(),
                    "built_equals_formula": bits == shape.memory_bits(),
                    "design_formula_bits": design_formula(model, scheme),
                    "per_synapse_lines_S_x_dmax_plus_1": synapses * (d_max + 1)})
                print(f"{rows[-1]['network']:28s} {scheme} x{lanes}: cycles/step "
                      f"{max(measured):6d} (formula {max(formula)}), memory "
                      f"{bits['total']} bits (formula {shape.memory_bits()['total']})", flush=True)
    return rows


def design_formula(model: Model, scheme: str) -> dict:
    """docs/design.md section 5's "about" figure of the scheme's delay storage (its cost
    model's)."""
    return CoreShape.from_model(model, 1, scheme).cost.delay_storage()


# --------------------------------------------------------------------------------- 2. burst


def burst_model(units: int) -> Model:
    rng = np.random.default_rng(units)
    out = Layer(name="o", kind="readout", size=units, w_bits=8, v_bits=24, f_bits=8, beta=250,
                d_max=7, w=rng.integers(1, 100, (units, BURST_INPUTS)),
                d=rng.integers(0, 8, (units, BURST_INPUTS)))
    return Model(n_inputs=BURST_INPUTS, layers=(out,)).validate()


def burst(lanes: int, groups: int, steps: int = 2) -> dict:
    units = groups * lanes
    model = burst_model(units)
    spikes = np.ones((1, steps, BURST_INPUTS), dtype=np.uint8)
    shape = CoreShape.from_model(model, lanes, "ring")
    run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
    check(model, spikes, shape, run)
    sops = BURST_INPUTS * units
    cycles = max(run.step_cycles)
    row = {"lanes": lanes, "groups": groups, "units": units, "spikes_per_step": BURST_INPUTS,
           "sop_per_step": sops, "step_cycles_measured": run.step_cycles,
           "step_cycles_formula": shape.cycles_per_step([BURST_INPUTS]),
           "sop_per_cycle_per_lane": round(sops / (cycles * lanes), 4),
           "sop_per_cycle_per_lane_with_input_events": round(
               sops / (run.cycles / steps * lanes), 4)}
    print(f"burst lanes {lanes:2d} G {groups}: {cycles} cycles/step, "
          f"{row['sop_per_cycle_per_lane']} SOP/cycle/lane", flush=True)
    return row


# -------------------------------------------------------------------------- 3. fifo vs ring


def fifo_vs_ring(activity: float, lanes: int, steps: int = 12) -> dict:
    model = model_of(64, 64, 10, 16, True)
    spikes = netgen.random_spikes(np.random.default_rng(int(activity * 100)), 1, steps, 64,
                                  activity)
    expected = golden.run(model, spikes)
    row = {"network": network_name(model), "input_activity": activity, "lanes": lanes,
           "steps": steps, "hidden_activity": round(float(expected.spikes[0].mean()), 4)}
    for scheme in SCHEMES:
        shape = CoreShape.from_model(model, lanes, scheme)
        run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
        check(model, spikes, shape, run, expected)
        periods = shape.step_periods(run.step_starts, run.step_dones)
        row[f"{scheme}_cycles_per_step"] = round(float(np.mean(periods)), 1)
        row[f"{scheme}_cycles_per_step_formula"] = round(float(np.mean(
            step_formula(shape, spikes, expected))), 1)
        row[f"{scheme}_cycles_per_sample"] = run.cycles
        row[f"{scheme}_memory_bits"] = shape.memory_bits()["total"]
    row["fifo_over_ring"] = round(row["fifo_cycles_per_sample"] / row["ring_cycles_per_sample"], 2)
    print(f"activity {activity:.0%} lanes {lanes}: fifo {row['fifo_cycles_per_step']}, ring "
          f"{row['ring_cycles_per_step']} cycles/step; per sample {row['fifo_over_ring']}x",
          flush=True)
    return row


# ------------------------------------------------------------------------------ 4. SHD size


def shd_model() -> Model:
    from golden import shd_like_model
    model = shd_like_model(np.random.default_rng(0))
    hidden = dataclasses.replace(model.layers[0], threshold=SHD_THRESHOLD)
    return dataclasses.replace(model, layers=(hidden,) + model.layers[1:]).validate()


def measured_fmax() -> dict[tuple[str, int], dict]:
    """ECP5-85F rows of the SHD-size core in bench/results/fmax.json, by (scheme, lanes)."""
    path = RESULTS / "fmax.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    return {(r["scheme"], r["lanes"]): r for r in rows
            if r["model"] == "shd" and r["target"] == "ecp5" and r["label"] == "current"}


def shd_workload(input_activity: float = 0.03, steps: int = 100, batch: int = 8):
    """The benchmarks' SHD-size workload: ``(model, spikes, expected)``, random input at
    ``input_activity`` (seed 1) and the golden model's result on it."""
    model = shd_model()
    rng = np.random.default_rng(1)
    spikes = (rng.random((batch, steps, model.n_inputs)) < input_activity).astype(np.uint8)
    return model, spikes, golden.run(model, spikes)


def sample_cycles(shape: CoreShape, spikes: np.ndarray, expected) -> list[float]:
    """Cycles of each streamed sample of ``spikes`` by the cost model of ``shape``."""
    return [shape.sample_cycles(spikes[b], [s[b] for s in expected.spikes])
            for b in range(len(spikes))]


def shd(lane_counts, verilator: bool, input_activity: float = 0.03, steps: int = 100,
        batch: int = 8) -> dict:
    model, spikes, expected = shd_workload(input_activity, steps, batch)
    fmax = measured_fmax()
    out = {"network": network_name(model) + ", 8-bit weights (bench/golden.py's, threshold "
                                            f"{SHD_THRESHOLD})",
           "input_activity": input_activity, "steps": steps, "samples": batch,
           "hidden_activity": round(float(expected.spikes[0].mean()), 4),
           "ecp5_85f_bram_bits": ECP5_85F_BRAM_BITS, "rows": []}
    for scheme in SCHEMES:
        for lanes in lane_counts:
            shape = CoreShape.from_model(model, lanes, scheme)
            per_sample = sample_cycles(shape, spikes, expected)
            cycles = float(np.mean(per_sample))
            bits = shape.memory_bits()
            row = {"scheme": scheme, "lanes": lanes, "cycles_per_step": round(cycles / steps, 1),
                   "cycles_per_sample": round(cycles),
                   "shd_samples_per_s_at_100mhz": round(100e6 / cycles, 1),
                   "memory_bits": bits, "bram_fraction": round(bits["total"] / ECP5_85F_BRAM_BITS, 3),
                   "fits_ecp5_85f_bram": bits["total"] < ECP5_85F_BRAM_BITS}
            synth = fmax.get((scheme, lanes))
            if synth and synth.get("fmax_mhz"):
                row.update(ecp5_fmax_mhz=synth["fmax_mhz"],
                           shd_samples_per_s=round(synth["fmax_mhz"] * 1e6 / cycles, 1),
                           ecp5_bram_blocks=f"{synth['bram']}/{synth['bram_available']}",
                           ecp5_lut=f"{synth['lut']}/{synth['lut_available']}",
                           ecp5_dsp=f"{synth['dsp']}/{synth['dsp_available']}",
                           ecp5_status=synth["status"],
                           ecp5_synth_s=round(synth["synth_s"]), ecp5_pnr_s=round(synth["pnr_s"]))
                if verilator:
                    row.update(verilator_check(model, spikes[:2], scheme, lanes, per_sample[:2]))
            out["rows"].append(row)
            print(f"SHD {scheme} x{lanes:2d}: {cycles / steps:9.1f} cycles/step, "
                  f"{100e6 / cycles:8.1f} samples/s at 100 MHz"
                  + (f", {row['shd_samples_per_s']} at {row['ecp5_fmax_mhz']} MHz"
                     if "shd_samples_per_s" in row else "")
                  + f", memory {bits['total']} bits ({row['bram_fraction']:.0%} of ECP5-85F BRAM)",
                  flush=True)
    t = time.perf_counter()
    ring = CoreShape.from_model(model, 1, "ring")
    out["ring_memory_bits_built_1_lane"] = built_memory_bits(Core(ring, model))
    out["ring_built_equals_formula_1_lane"] = (out["ring_memory_bits_built_1_lane"]
                                               == ring.memory_bits())
    out["elaboration_seconds_1_lane"] = round(time.perf_counter() - t, 1)
    return out


def verilator_check(model, spikes, scheme: str, lanes: int, formula: list[int]) -> dict:
    """Cycles per sample in Verilator (the same samples run once and twice: the difference
    leaves out the configuration writes and start-up), bit-exact, against the formula."""
    from delayhw.sim import cosim
    once = cosim.run_rtl(model, spikes, scheme=scheme, lanes=lanes)
    assert cosim.compare(model, spikes, once.result) is None
    twice = cosim.run_rtl(model, np.concatenate([spikes, spikes]), scheme=scheme, lanes=lanes)
    measured = (twice.cycles - once.cycles) / len(spikes)
    print(f"  Verilator: {measured:.0f} cycles/sample, {measured / np.mean(formula):.4f} x the "
          f"formula", flush=True)
    return {"verilator_cycles_per_sample": round(measured),
            "verilator_over_formula": round(measured / float(np.mean(formula)), 4)}


# ----------------------------------------------------------------------------------- report


def summary(results: dict) -> dict:
    """The headline figures and their targets."""
    five = [r for r in results["fifo_vs_ring"] if r["input_activity"] == 0.05]
    fitting = [r for r in results["shd"]["rows"] if r.get("shd_samples_per_s")
               and r.get("ecp5_status") == "ok" and r["fits_ecp5_85f_bram"]]
    best = max(fitting, key=lambda r: r["shd_samples_per_s"], default=None)
    out = {"sop_per_cycle_per_lane": min(r["sop_per_cycle_per_lane"] for r in results["burst"]),
           "fifo_over_ring_at_5_percent": min(r["fifo_over_ring"] for r in five),
           "shd_scheme": best and best["scheme"], "shd_lanes": best and best["lanes"],
           "shd_ecp5_fmax_mhz": best and best["ecp5_fmax_mhz"],
           "shd_samples_per_s": best and best["shd_samples_per_s"],
           "shd_samples_per_s_at_100mhz": best and best["shd_samples_per_s_at_100mhz"],
           "shd_memory_bits": best and best["memory_bits"]["total"],
           "shd_bram_fraction": best and best["bram_fraction"],
           "targets": TARGETS}
    out["targets_met"] = {k: out[k] is not None and out[k] >= v for k, v in TARGETS.items()}
    if best is None:
        print("no SHD-size Fmax in bench/results/fmax.json: run python bench/fmax.py "
              "--scheme ring --lanes 8 --models shd --targets ecp5", flush=True)
    return out


def markdown(results: dict) -> str:
    """The tables of docs/benchmarks.md."""
    s = {k: "-" if v is None else v for k, v in results["summary"].items()}
    if s["shd_memory_bits"] != "-":
        s["shd_memory_bits"] = f"{s['shd_memory_bits']:,} ({s['shd_bram_fraction']:.0%})"
    lines = ["| figure | value | target |", "|---|---|---|",
             f"| SOP per cycle per lane, ring burst (lowest of lanes 1..16) | "
             f"{s['sop_per_cycle_per_lane']} | >= 0.95 |",
             f"| fifo / ring cycles per sample at 5% input (64 -> 64 rec -> 10; lowest of "
             f"1 and 4 lanes) | {s['fifo_over_ring_at_5_percent']}x | >= 5x |",
             f"| SHD size, {s['shd_scheme']} x{s['shd_lanes']}: samples/s at the ECP5-85F "
             f"Fmax ({s['shd_ecp5_fmax_mhz']} MHz) | {s['shd_samples_per_s']} | >= 1,000 |",
             f"| same at 100 MHz | {s['shd_samples_per_s_at_100mhz']} | |",
             f"| same, memory bits (ECP5-85F block RAM: {ECP5_85F_BRAM_BITS:,}) | "
             f"{s['shd_memory_bits']} | fits, room left |",
             "", "| network, input activity | lanes | fifo cycles/step | ring cycles/step | "
                 "fifo / ring (per sample) |", "|---|---|---|---|---|"]
    for r in results["fifo_vs_ring"]:
        lines.append(f"| {r['network']}, {r['input_activity']:.0%} (hidden "
                     f"{r['hidden_activity']:.0%}) | {r['lanes']} | {r['fifo_cycles_per_step']:,} | "
                     f"{r['ring_cycles_per_step']:,} | {r['fifo_over_ring']}x |")
    sh = results["shd"]
    lines += ["", f"SHD size ({sh['network']}), input {sh['input_activity']:.0%}, hidden "
                  f"{sh['hidden_activity']:.1%}, {sh['steps']} steps:", "",
              "| scheme | lanes | cycles/step | samples/s at 100 MHz | ECP5-85F Fmax | samples/s "
              "at Fmax | memory bits (of BRAM) |", "|---|---|---|---|---|---|---|"]
    for r in sh["rows"]:
        lines.append(f"| {r['scheme']} | {r['lanes']} | {r['cycles_per_step']:,} | "
                     f"{r['shd_samples_per_s_at_100mhz']:,} | "
                     f"{str(r['ecp5_fmax_mhz']) + ' MHz' if 'ecp5_fmax_mhz' in r else '-'} | "
                     f"{r.get('shd_samples_per_s', '-')} | {r['memory_bits']['total']:,} "
                     f"({r['bram_fraction']:.0%}) |")
    return "\n".join(lines) + "\n"


def plot(results) -> None:
    from delayhw.plots import pyplot, save
    fig, (a, b, c) = pyplot().subplots(1, 3, figsize=(15, 4))
    rows = results["formulas"]
    for scheme, marker in zip(SCHEMES, "os^v"):
        sel = [r for r in rows if r["scheme"] == scheme]
        a.plot([max(r["cycles_per_step_formula"]) for r in sel],
               [max(r["cycles_per_step_measured"]) for r in sel], marker, label=scheme)
    lim = max(max(r["cycles_per_step_formula"]) for r in rows)
    a.plot([1, lim], [1, lim], "k:", lw=1, label="measured = formula")
    a.set(xlabel="formula (cycles/step)", ylabel="measured in amaranth.sim", xscale="log",
          yscale="log", title="cycles per step, lanes 1/2/4")
    a.legend()
    rows = results["fifo_vs_ring"]
    x = np.arange(len(rows))
    for k, scheme in enumerate(SCHEMES):
        b.bar(x + (k - 0.5) * 0.4, [r[f"{scheme}_cycles_per_step"] for r in rows], 0.4,
              label=scheme)
    b.set_xticks(x, [f"{r['input_activity']:.0%}, {r['lanes']} lane(s)" for r in rows])
    b.set(ylabel="cycles per step (measured)", yscale="log", title="64 -> 64r -> 10, d_max 16")
    b.legend()
    sh = results["shd"]["rows"]
    for scheme, marker in zip(SCHEMES, ("o-", "s-")):
        sel = [r for r in sh if r["scheme"] == scheme]
        c.plot([r["lanes"] for r in sel], [r["shd_samples_per_s_at_100mhz"] for r in sel],
               marker, label=f"{scheme}, 100 MHz")
    for r in sh:
        if "shd_samples_per_s" in r:
            c.plot([r["lanes"]], [r["shd_samples_per_s"]], "k*", ms=12,
                   label=f"{r['scheme']} at ECP5 Fmax {r['ecp5_fmax_mhz']} MHz")
    c.axhline(1000, color="k", ls=":", lw=1, label="target 1,000")
    c.set(xscale="log", yscale="log", xlabel="lanes", ylabel="samples / s",
          title="SHD size, SHD-like activity")
    c.legend(fontsize=7)
    save(fig, RESULTS / "gateware.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="lanes 1 and 4 only, no Verilator (a smoke run; not for the README)")
    args = ap.parse_args()
    lanes_small = (1, 4) if args.quick else (1, 2, 4)
    lanes_big = (1, 4) if args.quick else (1, 2, 4, 8, 16)
    t0 = time.perf_counter()
    results = {"formulas": formulas(lanes_small),
               "burst": [burst(lanes, groups) for groups in (8, 1) for lanes in lanes_big],
               "fifo_vs_ring": [fifo_vs_ring(a, lanes) for a in (0.05, 0.30) for lanes in (1, 4)],
               "shd": shd(lanes_big, verilator=not args.quick)}
    results["summary"] = summary(results)
    results["seconds"] = round(time.perf_counter() - t0)
    results["command"] = "python bench/gateware.py" + (" --quick" if args.quick else "")
    write_result("gateware", results)
    (RESULTS / "gateware.md").write_text(markdown(results))
    print(markdown(results))
    plot(results)


if __name__ == "__main__":
    main()
