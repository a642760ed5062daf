"""Gateware cost: cycles per time step measured in amaranth.sim against the manifest's
formula, and memory bits of the built core against the formulas of DESIGN.md section 5.

For each size: build the core (fifo scheme, or ring with --scheme ring), run 3 steps of
random input in amaranth.sim, record the busy cycles of each step; count the bits of every
memory the elaborated core holds. Section 5 says the fifo scheme keeps a spike history of
d_max+1 steps per source, "about n_in x (d_max+1)" bits per layer (here: fan_in x d_max bits
in memory plus this step's spike bitmaps), instead of S x (d_max+1) for per-synapse delay
lines (S synapses), and the ring scheme "about N x (d_max+1) x acc_bits". Writes
bench/results/gateware.json and .png (fifo); bench/ring.py compares the schemes.

    python bench/gateware.py [--scheme ring]    (ring: bench/results/gateware_ring.json;
                                                 its formula takes the golden spike counts)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_result  # noqa: E402

from delayhw import golden, netgen  # noqa: E402
from delayhw.gateware import protocol, pysim  # noqa: E402
from delayhw.gateware.core import Core, built_memory_bits  # noqa: E402
from delayhw.gateware.memories import nibbles  # noqa: E402
from delayhw.gateware.shape import SCHEMES, CoreShape, memory_depth  # noqa: E402

SIZES = [  # (n_inputs, hidden, outputs, d_max, recurrent)
    (4, 4, 2, 3, False), (8, 8, 4, 7, True), (16, 16, 4, 15, True), (32, 24, 6, 25, True),
    (64, 32, 10, 25, False),
]


#: the benchmarks' network of a given size (also bench/fmax.py's)
model_of = netgen.sized_model


def main() -> None:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scheme", choices=SCHEMES, default="fifo")
    scheme = ap.parse_args().scheme
    rows = []
    for n_in, hidden, out, d_max, rec in SIZES:
        model = model_of(n_in, hidden, out, d_max, rec)
        spikes = netgen.random_spikes(np.random.default_rng(1), 1, 3, n_in, 0.2)
        for lanes in (1, 2, 4):
            shape = CoreShape.from_model(model, lanes, scheme)
            core = Core(shape, model)
            run = pysim.simulate(core, protocol.batch_words(spikes))
            if scheme == "ring":        # the formula counts this step's spikes
                expected = golden.run(model, spikes)
                formula = max(shape.cycles_of_sample(spikes[0], [s[0] for s in expected.spikes]))
            else:
                formula = shape.cycles_per_step()
            bits = built_memory_bits(Core(shape, model))
            synapses = sum(l.size * l.fan_in for l in model.layers)
            neurons = sum(l.size for l in model.layers)
            per_synapse_lines = synapses * (d_max + 1)
            history_formula = sum(l.fan_in * (l.d_max + 1) for l in model.layers)
            ring_formula = sum(l.size * (l.d_max + 1) * l.acc_bits for l in model.layers)
            rows.append({
                "network": f"{n_in}->{hidden}{' rec' if rec else ''}->{out}, d_max {d_max}",
                "lanes": lanes, "synapses": synapses, "neurons": neurons,
                "cycles_per_step_measured": run.step_cycles,
                "cycles_per_step_formula": formula,
                "measured_over_formula": round(max(run.step_cycles) / formula, 4),
                "synaptic_ops_per_cycle": round(synapses / max(run.step_cycles), 3),
                "memory_bits_built": bits,
                "memory_bits_manifest": shape.memory_bits(),
                "ring_formula_N_x_dmax_plus_1_x_acc_bits": ring_formula,
            })
            if scheme == "fifo":
                rows[-1].update(
                    fifo_history_bits_built=bits["delay_lines"],
                    fifo_history_formula_fan_in_x_dmax=sum(l.fan_in * l.d_max
                                                           for l in model.layers),
                    fifo_formula_n_in_x_dmax_plus_1=history_formula,
                    per_synapse_lines_S_x_dmax_plus_1=per_synapse_lines,
                    # the histories plus the delay fields of the packed synapse memories
                    fifo_delay_bits_built=bits["delay_lines"] + sum(
                        memory_depth(l.groups(lanes) * l.fan_in) * lanes * nibbles(l.d_bits)
                        for l in shape.layers))
            else:
                rows[-1].update(ring_built=bits["ring"],
                                ring_built_over_formula=round(bits["ring"] / ring_formula, 3))
            print(f"{rows[-1]['network']:32s} lanes {lanes}: cycles/step {max(run.step_cycles):6d} "
                  f"(formula {formula}), memory {bits['total']} bits", flush=True)
    if scheme == "fifo":
        write_result("gateware", {"scheme": "fifo", "rows": rows, "shd_size": shd_size_memory()})
        plot(rows)
    else:
        write_result(f"gateware_{scheme}", {"scheme": scheme, "rows": rows})


def shd_size_memory() -> dict:
    """Memory of the SHD-size core (bench/golden.py's 700 -> 128 recurrent -> 20, d_max 25),
    elaborated (not simulated: a step takes ~10^5 cycles), against the formula."""
    from golden import shd_like_model
    model = shd_like_model(np.random.default_rng(0))
    shape = CoreShape.from_model(model)
    bits = built_memory_bits(Core(shape, model))
    synapses = sum(l.size * l.fan_in for l in model.layers)
    out = {"network": "700 -> 128 rec -> 20, d_max 25", "memory_bits_built": bits,
           "memory_bits_manifest": shape.memory_bits(),
           "fifo_history_bits_built": bits["delay_lines"],
           "fifo_formula_n_in_x_dmax_plus_1": sum(l.fan_in * (l.d_max + 1) for l in model.layers),
           "per_synapse_lines_S_x_dmax": synapses * 25,
           "cycles_per_step_formula": shape.cycles_per_step(), "score_bits": shape.score_bits}
    print(f"SHD-size: history bits {bits['delay_lines']} (per-synapse lines would be "
          f"{synapses * 25}); total memory {bits['total']} bits", flush=True)
    return out


def plot(rows) -> None:
    from delayhw.plots import pyplot, save
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(11, 4))
    for lanes, marker in ((1, "o"), (2, "s"), (4, "^")):
        sel = [r for r in rows if r["lanes"] == lanes]
        a.plot([r["cycles_per_step_formula"] for r in sel],
               [max(r["cycles_per_step_measured"]) for r in sel], marker, label=f"{lanes} lane(s)")
    lim = max(r["cycles_per_step_formula"] for r in rows)
    a.plot([0, lim], [0, lim], "k:", lw=1, label="measured = formula")
    a.set(xlabel="formula (cycles/step)", ylabel="measured in amaranth.sim", xscale="log",
          yscale="log", title="cycles per time step")
    a.legend()
    sel = [r for r in rows if r["lanes"] == 1]
    x = np.arange(len(sel))
    b.bar(x - 0.2, [r["fifo_delay_bits_built"] for r in sel], 0.4, label="fifo, built")
    b.bar(x + 0.2, [r["ring_formula_N_x_dmax_plus_1_x_acc_bits"] for r in sel], 0.4,
          label="ring, formula")
    b.set_xticks(x, [r["network"].split(",")[0] for r in sel], rotation=20, fontsize=7)
    b.set(ylabel="delay storage bits", yscale="log", title="delay memory per scheme (1 lane)")
    b.legend()
    save(fig, RESULTS / "gateware.png")


if __name__ == "__main__":
    main()
