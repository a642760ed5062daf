"""Speed of the golden model, in synaptic events per second, at SHD size.

Network: 700 inputs -> 128 recurrent lif (d_max 25) -> 20 readout, T=100, batch 32.
Compared in the same run against
  (a) the plain-loop implementation of section 3 (delayhw.reference) on a smaller network,
      scaled per synaptic event, and
  (b) a float32 torch CPU forward pass of the same network (same per-delay matmul scheme,
      the fastest plain torch formulation we know), time for time.
Target: golden time <= torch time (issue 22; was 3 x), both timed alternating in one run
(best of 5 rounds each), with the machine's load average recorded.

With --model FILE --input FILE the same comparison also runs, in the same run, on that
model and input (e.g. the trained audio model of `delayhw train --task fsdd/train --test
fsdd/test`, on its NAME.test.npz), with process CPU times beside the wall times: the result's
`trained_model` section.

Memory (issue 13): peak RSS and time of one golden run for a 1024 -> 1024 -> 10 network with d_max 255 (every delay used) and for the SHD-size network,
with the per-delay weight blocks prepared whole (the previous algorithm, STACK_BYTES
unbounded) and bounded (the default): peak RSS each in a fresh process, time alternating
both in one process (the machine may be shared). Target: 1024 x 1024 under 1 GB, no slower.
Writes bench/results/golden.json.

    python bench/golden.py [--batch 32] [--steps 100] [--skip-memory]
    python bench/golden.py --model M.npz --input M.test.npz     # and on a trained model
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, best_times, load_average, write_result  # noqa: E402

from delayhw import golden, reference  # noqa: E402
from delayhw.spec import Layer, LayerKind, Model, Reset  # noqa: E402


def shd_like_model(rng: np.random.Generator, n_in=700, hidden=128, out=20, d_max=25) -> Model:
    """Dense trained-looking weights: gaussian, clipped to 8 bits; uniform delays."""
    def weights(shape, scale):
        return np.clip(np.rint(rng.normal(0, scale, shape)), -128, 127).astype(np.int64)
    h = Layer(name="hidden", kind=LayerKind.LIF, size=hidden, w_bits=8, v_bits=16, f_bits=8, beta=243,
              d_max=d_max, w=weights((hidden, n_in), 12), d=rng.integers(0, d_max + 1, (hidden, n_in)),
              w_rec=weights((hidden, hidden), 8), d_rec=rng.integers(1, d_max + 1, (hidden, hidden)),
              bias=None, threshold=300, reset="subtract")
    o = Layer(name="out", kind=LayerKind.READOUT, size=out, w_bits=8, v_bits=20, f_bits=8, beta=250,
              d_max=d_max, w=weights((out, hidden), 20), d=rng.integers(0, d_max + 1, (out, hidden)))
    return Model(n_inputs=n_in, layers=(h, o)).validate()


def torch_forward(model: Model, spikes: np.ndarray):
    """Float32 torch forward of the same network (no autograd): per-delay weight stacks,
    one matmul for all feedforward delays, one per step for the recurrent ones; biases and
    either reset mode as the model has them (a trained model's too)."""
    import torch
    x = torch.from_numpy(spikes.astype(np.float32))
    batch, steps, _ = x.shape

    def stacks(w, d):
        ks = np.unique(d[w != 0])
        return ks, torch.from_numpy(np.concatenate([np.where(d == k, w, 0).T for k in ks], 1)
                                    .astype(np.float32))

    prepared = []
    for layer in model.layers:
        rec = stacks(layer.w_rec, layer.d_rec) if layer.recurrent else None
        prepared.append((stacks(layer.w, layer.d), rec))

    def forward():
        with torch.no_grad():
            pre = x
            for layer, ((ks, st), rec) in zip(model.layers, prepared):
                n = layer.size
                y = (pre.reshape(batch * steps, -1) @ st).reshape(batch, steps, len(ks), n)
                cur = torch.zeros(batch, steps + layer.d_max + 1, n)
                for m, k in enumerate(ks):
                    cur[:, k:k + steps] += y[:, :, m]
                if layer.has_bias:
                    cur[:, :steps] += torch.from_numpy(layer.bias.astype(np.float32))
                decay = layer.beta / 2 ** layer.f_bits
                zero = layer.reset == Reset.ZERO
                v = torch.zeros(batch, n)
                outs = []
                for t in range(steps):
                    v = decay * v + cur[:, t]
                    if layer.kind is LayerKind.LIF:
                        s = (v >= layer.threshold).float()
                        v = v * (1 - s) if zero else v - s * layer.threshold
                        if rec is not None:
                            rks, rst = rec
                            r = (s @ rst).reshape(batch, len(rks), n)
                            cur[:, t + torch.from_numpy(rks)] += r
                        outs.append(s)
                    else:
                        outs.append(v)
                pre = torch.stack(outs, 1)
            return pre.sum(1)
    return forward


def wide_model(rng: np.random.Generator, n=1024, out=10, d_max=255) -> Model:
    """n -> n lif -> out readout, dense 8-bit weights, delays uniform over 0..d_max."""
    def weights(shape, scale):
        return np.clip(np.rint(rng.normal(0, scale, shape)), -128, 127).astype(np.int64)
    h = Layer(name="hidden", kind=LayerKind.LIF, size=n, w_bits=8, v_bits=16, f_bits=8, beta=243,
              d_max=d_max, w=weights((n, n), 12), d=rng.integers(0, d_max + 1, (n, n)),
              threshold=300, reset="subtract")
    o = Layer(name="out", kind=LayerKind.READOUT, size=out, w_bits=8, v_bits=24, f_bits=8, beta=250,
              d_max=d_max, w=weights((out, n), 20), d=rng.integers(0, d_max + 1, (out, n)))
    return Model(n_inputs=n, layers=(h, o)).validate()


MEMORY_CASES = {
    "wide_1024x1024_dmax255": dict(make=wide_model, batch=4, steps=100, density=0.05, repeats=2),
    "shd_700_128r_20": dict(make=shd_like_model, batch=32, steps=100, density=0.1, repeats=7),
}


def _previous_blocks(self, w, d, ftype):
    """How the golden model prepared a layer before issue 13: one int64 block per distinct
    delay, concatenated, then cast (kept here as the baseline of the memory figures)."""
    self.size, self.n_in = w.shape
    self.ftype = ftype
    self.ks = np.unique(d[w != 0])
    self.per_group, self.whole = max(1, len(self.ks)), True
    blocks = [np.where(d == k, w, 0).T for k in self.ks]
    self.stack = (np.concatenate(blocks, axis=1).astype(ftype) if blocks
                  else np.zeros((self.n_in, 0), dtype=ftype))


def _case(case: str):
    spec = MEMORY_CASES[case]
    rng = np.random.default_rng(0)
    model = spec["make"](rng)
    spikes = (rng.random((spec["batch"], spec["steps"], model.n_inputs)) < spec["density"]) \
        .astype(np.uint8)
    return spec, model, spikes


def _peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM of its own address space (ru_maxrss would include the
    parent's before exec, since subprocesses start by vfork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_one(case: str, bounded: bool) -> dict:
    """In this (fresh) process: build the case, run golden once; its peak RSS."""
    _, model, spikes = _case(case)
    if not bounded:                           # the algorithm before issue 13
        golden._DelayBlocks.__init__ = _previous_blocks
    base = _peak_rss_kib()
    result = golden.run(model, spikes)
    peak = _peak_rss_kib()
    return {"peak_rss_mb": round(peak / 1024, 1), "rss_before_run_mb": round(base / 1024, 1),
            "scores_sha256": hashlib.sha256(result.scores.tobytes()).hexdigest()[:16]}


def time_both(case: str) -> dict:
    """Both preparations timed in this process, alternating (the machine may be shared, so
    they see the same load), best of ``repeats`` each, preparation included."""
    spec, model, spikes = _case(case)
    bounded_init = golden._DelayBlocks.__init__
    best = {"whole_blocks_before": float("inf"), "bounded_after": float("inf")}
    for _ in range(spec["repeats"]):
        for label, init in (("whole_blocks_before", _previous_blocks),
                            ("bounded_after", bounded_init)):
            golden._DelayBlocks.__init__ = init
            t0 = time.perf_counter()
            golden.run(model, spikes)
            best[label] = min(best[label], time.perf_counter() - t0)
    golden._DelayBlocks.__init__ = bounded_init
    return {k: round(v, 3) for k, v in best.items()}


def memory_figures() -> dict:
    out = {}
    for case, spec in MEMORY_CASES.items():
        row = {"batch": spec["batch"], "steps": spec["steps"], "density": spec["density"],
               "time": f"best of {spec['repeats']} alternating run(s) in one process, "
                       f"preparation included"}
        for label, bounded in (("whole_blocks_before", False), ("bounded_after", True)):
            proc = subprocess.run([sys.executable, __file__, "--measure-one", case] +
                                  ([] if bounded else ["--whole"]),
                                  capture_output=True, text=True, check=True)
            row[label] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert row["whole_blocks_before"]["scores_sha256"] == row["bounded_after"]["scores_sha256"]
        for label, seconds in time_both(case).items():
            row[label]["seconds"] = seconds
        row["peak_rss_after_over_before"] = round(row["bounded_after"]["peak_rss_mb"]
                                                  / row["whole_blocks_before"]["peak_rss_mb"], 3)
        row["time_after_over_before"] = round(row["bounded_after"]["seconds"]
                                              / row["whole_blocks_before"]["seconds"], 3)
        out[case] = row
        print(case, json.dumps(row), flush=True)
    return out


def describe(model: Model) -> str:
    """``n_in -> size kind (recurrent, bias, d_max) -> ...``, for the result file."""
    parts = [str(model.n_inputs)]
    for layer in model.layers:
        extra = [x for x, on in (("recurrent", layer.recurrent), ("bias", layer.has_bias)) if on]
        parts.append(f"{layer.size} {LayerKind(layer.kind).value} ({', '.join(extra + [f'd_max {layer.d_max}'])}"
                     f", {layer.w_bits}-bit weights)")
    return " -> ".join(parts)


def compare_on_files(args) -> dict:
    """Golden against torch's float forward on a model and input file, alternating."""
    import torch
    from delayhw import load_input, load_model
    load_before = load_average()
    model = load_model(args.model)
    spikes = load_input(args.input, model).spikes[:args.batch]
    result = golden.run(model, spikes)
    fns = {"golden": lambda: golden.run(model, spikes), "torch": torch_forward(model, spikes)}
    times = best_times(fns, repeats=5)
    cpu = best_times(fns, repeats=5, clock=time.process_time)
    return {
        "model": str(args.model), "input": str(args.input),
        "network": describe(model),
        "batch": int(spikes.shape[0]), "steps": int(spikes.shape[1]),
        "input_density": round(float(np.mean(spikes)), 4),
        "lif_spike_rates": [round(float(s.mean()), 4) for s in result.spikes],
        "synaptic_events": golden.synaptic_events(model, spikes, result),
        "golden_seconds": round(times["golden"], 4),
        "torch_float32_seconds": round(times["torch"], 4),
        "torch_threads": torch.get_num_threads(),
        "golden_over_torch_time": round(times["golden"] / times["torch"], 3),
        "target_golden_over_torch_time_max": 1.0,
        "golden_cpu_seconds": round(cpu["golden"], 4),
        "torch_cpu_seconds": round(cpu["torch"], 4),
        "golden_over_torch_cpu_time": round(cpu["golden"] / cpu["torch"], 3),
        "timing": "golden and torch alternating in one process, best of 5 rounds each, wall "
                  "time (the target's) and then process CPU time (all threads; steadier "
                  "when the machine is shared)",
        "load_average_at_start": load_before}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--density", type=float, default=0.1, help="input spike probability per bin")
    ap.add_argument("--skip-memory", action="store_true", help="no peak-RSS measurements")
    ap.add_argument("--model", help="a model file to compare on too (needs --input)")
    ap.add_argument("--input", help="its input file (the first --batch samples are used)")
    ap.add_argument("--measure-one", choices=sorted(MEMORY_CASES), help=argparse.SUPPRESS)
    ap.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_one:
        print(json.dumps(measure_one(args.measure_one, bounded=not args.whole)))
        return
    if bool(args.model) != bool(args.input):
        ap.error("--model and --input go together")
    load_before = load_average()
    memory = None if args.skip_memory else memory_figures()
    import torch
    torch.set_num_threads(max(1, torch.get_num_threads()))

    rng = np.random.default_rng(0)
    model = shd_like_model(rng)
    spikes = (rng.random((args.batch, args.steps, model.n_inputs)) < args.density).astype(np.uint8)
    result = golden.run(model, spikes)
    events = golden.synaptic_events(model, spikes, result)
    times = best_times({"golden": lambda: golden.run(model, spikes),
                        "torch": torch_forward(model, spikes)}, repeats=5)
    t_golden, t_torch = times["golden"], times["torch"]

    small = shd_like_model(np.random.default_rng(1), n_in=40, hidden=16, out=5, d_max=8)
    small_spikes = (rng.random((2, 30, small.n_inputs)) < args.density).astype(np.uint8)
    t_ref, _ = best_time(lambda: reference.run(small, small_spikes), repeats=2)
    small_events = golden.synaptic_events(small, small_spikes, golden.run(small, small_spikes))
    # the loop implementation visits every synapse every step, active or not
    small_synapse_visits = sum(l.size * l.fan_in for l in small.layers) * 2 * 30

    hidden_rate = float(result.spikes[0].mean())
    trained = compare_on_files(args) if args.model else None
    write_result("golden", {
        "network": "700 -> 128 lif (recurrent, d_max 25) -> 20 readout, 8-bit weights",
        "batch": args.batch, "steps": args.steps, "input_density": args.density,
        "hidden_spike_rate": round(hidden_rate, 4),
        "synaptic_events": events,
        "golden_seconds": round(t_golden, 4),
        "golden_events_per_s": round(events / t_golden),
        "torch_float32_seconds": round(t_torch, 4),
        "torch_threads": torch.get_num_threads(),
        "golden_over_torch_time": round(t_golden / t_torch, 3),
        "target_golden_over_torch_time_max": 1.0,
        "timing": "golden and torch alternating in one process, best of 5 rounds each",
        "load_average_at_start": load_before,
        "reference_loop": {"network": "40 -> 16 lif (recurrent, d_max 8) -> 5, batch 2, T 30",
                           "seconds": round(t_ref, 4), "synaptic_events": small_events,
                           "synapse_visits": small_synapse_visits,
                           "events_per_s": round(small_events / t_ref)},
        "golden_over_reference_events_per_s": round((events / t_golden) / (small_events / t_ref), 1),
        "trained_model": trained,
        "memory": memory,
        "memory_target": "1024 x 1024, d_max 255: bounded peak RSS under 1 GB, time no slower "
                         "than whole blocks",
    })


if __name__ == "__main__":
    main()
