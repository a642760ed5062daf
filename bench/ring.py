"""The event-driven ``ring`` scheme: synaptic operations per cycle per lane on a long burst,
ring against fifo cycles per step at 5% and 30% input activity, and the SHD-size network's
ring memory and cycles. Writes bench/results/ring.json and ring.png.

1. Burst (amaranth.sim): 512 input channels all spiking in every step into one layer of
   ``N = G * lanes`` units, lanes 1..16, for G = 8 (wide layer) and G = 1 (one group: the
   spike expander must deliver a spike every cycle). A synaptic operation is one addition
   of a weight into a ring slot; there are ``512 * N`` per step. Figure: SOP per busy cycle
   of a step per lane (the step runs from its STEP event to idle: events, neuron pass,
   pipeline drain); the input events themselves are accepted one per cycle before the
   STEP and are reported separately.
2. fifo vs ring (amaranth.sim): 64 -> 64 recurrent -> 10, d_max 16, 1 and 4 lanes, 12 steps
   of random input at 5% and 30%: mean busy cycles per step, measured, for both schemes.
3. SHD size: 700 -> 128 recurrent -> 20, d_max 25 (bench/golden.py's network), input at 3%
   per step, 100 steps, 8 samples: cycles per sample from ``CoreShape.sample_cycles`` (checked
   against amaranth.sim in tests/test_gateware_ring.py and test_gateware_overlap.py) with the golden model's spike counts,
   memory bits by kind against the ECP5-85F block RAM, samples/s at 100 MHz; with 1, 4 and
   16 lanes also measured in Verilator (2 samples).

    python bench/ring.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_result  # noqa: E402
from gateware import model_of  # noqa: E402
from golden import shd_like_model  # noqa: E402

from delayhw import golden, netgen  # noqa: E402
from delayhw.gateware import protocol, pysim  # noqa: E402
from delayhw.gateware.core import Core, built_memory_bits  # noqa: E402
from delayhw.gateware.shape import CoreShape  # noqa: E402
from delayhw.sim import cosim  # noqa: E402
from delayhw.spec import Layer, Model  # noqa: E402

ECP5_85F_BRAM_BITS = 208 * 18 * 1024
BURST_INPUTS = 512


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
    assert protocol.first_difference(
        golden.run(model, spikes), protocol.decode_outputs(run.outputs, shape, 1, steps)) is None
    sops = BURST_INPUTS * units
    cycles = max(run.step_cycles)
    row = {"lanes": lanes, "groups": groups, "units": units, "spikes_per_step": BURST_INPUTS,
           "sop_per_step": sops, "step_cycles_measured": run.step_cycles,
           "step_cycles_formula": shape.cycles_per_step([BURST_INPUTS]),
           "sop_per_cycle_per_lane": round(sops / (cycles * lanes), 4),
           "sop_per_cycle_per_lane_with_input_events": round(
               sops / ((cycles + BURST_INPUTS) * lanes), 4)}
    print(f"burst lanes {lanes:2d} G {groups}: {cycles} cycles/step, "
          f"{row['sop_per_cycle_per_lane']} SOP/cycle/lane", flush=True)
    return row


def schemes(activity: float, lanes: int) -> dict:
    model = model_of(64, 64, 10, 16, True)
    spikes = netgen.random_spikes(np.random.default_rng(int(activity * 100)), 1, 12, 64, activity)
    expected = golden.run(model, spikes)
    row = {"network": "64 -> 64 recurrent -> 10, d_max 16", "input_activity": activity,
           "lanes": lanes, "hidden_activity": round(float(expected.spikes[0].mean()), 4)}
    for scheme in ("fifo", "ring"):
        shape = CoreShape.from_model(model, lanes, scheme)
        run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes))
        assert protocol.first_difference(
            expected, protocol.decode_outputs(run.outputs, shape, 1, 12)) is None
        row[f"{scheme}_cycles_per_step"] = round(float(np.mean(run.step_cycles)), 1)
        if scheme == "ring":
            formula = shape.cycles_of_sample(spikes[0], [s[0] for s in expected.spikes])
            row["ring_formula_cycles_per_step"] = round(float(np.mean(formula)), 1)
            # equal unless a neuron pass out-runs the one-spike-per-cycle output stream
            assert all(r >= f for r, f in zip(run.step_cycles, formula))
            assert lanes > 1 or run.step_cycles == formula
    row["fifo_over_ring"] = round(row["fifo_cycles_per_step"] / row["ring_cycles_per_step"], 2)
    print(f"activity {activity:.0%} lanes {lanes}: fifo {row['fifo_cycles_per_step']}, ring "
          f"{row['ring_cycles_per_step']} cycles/step ({row['fifo_over_ring']}x)", flush=True)
    return row


def shd(input_activity: float = 0.03, steps: int = 100, batch: int = 8) -> dict:
    model = shd_like_model(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    spikes = (rng.random((batch, steps, model.n_inputs)) < input_activity).astype(np.uint8)
    expected = golden.run(model, spikes)
    out = {"network": "700 -> 128 recurrent lif -> 20 readout, d_max 25, 8-bit weights",
           "input_activity": input_activity, "steps": steps, "samples": batch,
           "hidden_activity": round(float(expected.spikes[0].mean()), 4),
           "ecp5_85f_bram_bits": ECP5_85F_BRAM_BITS, "lanes": []}
    for lanes in (1, 2, 4, 8, 16):
        shape = CoreShape.from_model(model, lanes, "ring")
        per_sample = []
        for b in range(batch):
            # streamed: input events overlap the previous step; score walk and clear
            per_sample.append(shape.sample_cycles(spikes[b], [s[b] for s in expected.spikes]))
        bits = shape.memory_bits()
        fifo_bits = CoreShape.from_model(model, lanes, "fifo").memory_bits()
        cycles = float(np.mean(per_sample))
        out["lanes"].append({
            "lanes": lanes, "cycles_per_step": round(cycles / steps, 1),
            "cycles_per_sample": round(cycles), "fifo_cycles_per_step":
                CoreShape.from_model(model, lanes, "fifo").cycles_per_step(),
            "shd_samples_per_s_at_100mhz": round(100e6 / cycles, 1),
            "memory_bits": bits, "fifo_memory_bits_total": fifo_bits["total"],
            "fits_ecp5_85f_bram": bits["total"] < ECP5_85F_BRAM_BITS, "_per_sample": per_sample,
            "bram_fraction": round(bits["total"] / ECP5_85F_BRAM_BITS, 3)})
        print(f"SHD lanes {lanes:2d}: {cycles / steps:8.1f} cycles/step, "
              f"{100e6 / cycles:7.1f} samples/s at 100 MHz, ring memory {bits['total']} bits "
              f"({bits['total'] / ECP5_85F_BRAM_BITS:.0%} of ECP5-85F BRAM)", flush=True)
    # measured in Verilator: cycles of the same samples run once and twice (the difference
    # leaves out the configuration writes and start-up), against the formula's total
    for row in out["lanes"]:
        if row["lanes"] not in (1, 4, 16):
            continue
        few = spikes[:2]
        once = cosim.run_rtl(model, few, scheme="ring", lanes=row["lanes"])
        twice = cosim.run_rtl(model, np.concatenate([few, few]), scheme="ring", lanes=row["lanes"])
        assert cosim.compare(model, few, once.result) is None
        measured = (twice.cycles - once.cycles) / len(few)
        row["verilator_cycles_per_sample"] = round(measured)
        row["verilator_over_formula"] = round(measured / np.mean(row["_per_sample"][:2]), 4)
        print(f"SHD lanes {row['lanes']:2d}: Verilator {measured:.0f} cycles/sample, "
              f"{row['verilator_over_formula']} x the formula", flush=True)
    for row in out["lanes"]:
        del row["_per_sample"]
    t = time.perf_counter()
    built = built_memory_bits(Core(CoreShape.from_model(model, 1, "ring"), model))
    out["memory_bits_built_1_lane"] = built
    out["built_equals_formula_1_lane"] = built == out["lanes"][0]["memory_bits"]
    out["elaboration_seconds_1_lane"] = round(time.perf_counter() - t, 1)
    return out


def main() -> None:
    bursts = [burst(lanes, groups) for groups in (8, 1) for lanes in (1, 2, 4, 8, 16)]
    compare = [schemes(a, lanes) for a in (0.05, 0.30) for lanes in (1, 4)]
    results = {"burst": bursts,
               "burst_min_sop_per_cycle_per_lane": min(r["sop_per_cycle_per_lane"] for r in bursts),
               "target_sop_per_cycle_per_lane": 0.95,
               "fifo_vs_ring": compare, "shd": shd()}
    write_result("ring", results)
    plot(results)


def plot(results) -> None:
    from delayhw.plots import pyplot, save
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(11, 4))
    for groups, marker in ((8, "o-"), (1, "s-")):
        sel = [r for r in results["burst"] if r["groups"] == groups]
        a.plot([r["lanes"] for r in sel], [r["sop_per_cycle_per_lane"] for r in sel], marker,
               label=f"{groups} group(s) per layer")
    a.axhline(0.95, color="k", ls=":", lw=1, label="target 0.95")
    a.set(xscale="log", xlabel="lanes", ylabel="SOP / cycle / lane", ylim=(0.8, 1.01),
          title=f"ring, burst of {BURST_INPUTS} spikes per step")
    a.legend()
    rows = results["fifo_vs_ring"]
    x = np.arange(len(rows))
    b.bar(x - 0.2, [r["fifo_cycles_per_step"] for r in rows], 0.4, label="fifo")
    b.bar(x + 0.2, [r["ring_cycles_per_step"] for r in rows], 0.4, label="ring")
    b.set_xticks(x, [f"{r['input_activity']:.0%}, {r['lanes']} lane(s)" for r in rows])
    b.set(ylabel="cycles per step (measured)", yscale="log",
          title="64 -> 64r -> 10, d_max 16")
    b.legend()
    save(fig, RESULTS / "ring.png")


if __name__ == "__main__":
    main()
