"""Spoken digits end to end: recordings -> spikes -> trained model -> RTL (issue 20 part 5).

Data: ``../shared/data/fsdd/{train,test}/<digit>/<speaker>_<i>.wav`` (FSDD, 4 speakers; its
README has reference figures of other front-ends). Every figure comes from one run:

  frontend  the integer front-end (``delayhw.audio_files.load_audio``) on every recording:
            wall seconds per second of audio; the plain-loop spec
            (``delayhw.reference.encode_audio``) on a few recordings as the baseline (ratio,
            and its spikes must equal the front-end's)
  seeds     defaults only (``delayhw.train.api.train_task(train/, test=test/)``), seeds
            0..N-1: training seconds, float and integer (golden) test accuracy, and every
            test recording run in Verilator (``--scheme``/``--lanes``): RTL scores must equal
            the golden model's bit for bit (mismatching samples are counted; 0 expected),
            cycles per sample measured and from the cost model
  loso      leave one speaker out, defaults, seed 0: train on the other speakers' recordings
            (train/ and test/), test on all of the speaker's (symlink trees in a temp dir)
  frozen    ``freeze_delays=True``, seed 0: on train/ -> test/, and leave one speaker out
            for every speaker (the test split sits near its ceiling, so LOSO is where a
            difference between learned and frozen delays can show)
  bits      ``w_bits`` 8/6/4 (d_max default), ``d_max`` 7/15/31 (8-bit weights) and 4-bit
            weights with d_max 15/31, seed 0: integer accuracy and the model's memory
            (sum over layers of synapses x (w_bits + ceil(log2(d_max + 1))) bits) beside
            the generated core's memory (``CoreShape.memory_bits``)
  dcls      the same network with the DCLS package's Dcls1d layers (bench/_dcls.py) trained
            with the same loop on the same spikes (``delayhw.train.data.audio_folders``, the
            trainer's own encoding of the folders): float test accuracy with learned and
            with rounded positions, seed 0

Training jobs run in ``--jobs`` worker processes (default 2), one torch thread each; each
job records its own seconds and the load average at its start and end. The front-end is
timed first, alone. Results of finished jobs are kept in ``bench/results/audio.jobs.json``
(``--resume`` goes on from them; jobs made with other ``--epochs``/``--limit``/``--lanes``
are not reused). Writes ``bench/results/audio.json`` and ``audio.png`` and prints a markdown
table of the headline figures.

    python bench/audio.py [--jobs 2] [--resume] [--only seeds,loso] [--seeds 3]
    python bench/audio.py --epochs 1 --limit 3 --name audio_smoke     # a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_result  # noqa: E402

#: ``shared/data/fsdd`` beside the checkout (or beside a folder above it: a git worktree)
DATA = next((p / "shared" / "data" / "fsdd" for p in Path(__file__).resolve().parents[1:]
             if (p / "shared" / "data" / "fsdd").is_dir()),
            Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fsdd")
SPEAKERS = ("jackson", "nicolas", "theo", "yweweler")
KEYS = ("frontend", "seeds", "loso", "frozen", "bits", "dcls")

#: seed-0 variants on train/ -> test/: name -> train_task options ("default" is seed 0 of
#: ``seeds``). w8 is the default (8-bit weights); d_max's default is derived from the data.
VARIANTS = {"frozen": {"freeze_delays": True},
            "w6": {"w_bits": 6}, "w4": {"w_bits": 4},
            "d7": {"d_max": 7}, "d15": {"d_max": 15}, "d31": {"d_max": 31},
            "w4_d15": {"w_bits": 4, "d_max": 15}, "w4_d31": {"w_bits": 4, "d_max": 31}}
BITS_VARIANTS = ("w6", "w4", "d7", "d15", "d31", "w4_d15", "w4_d31")
#: README of the data set: its reference front-end and models (not delayhw's), for comparison
REFERENCE = {"dcls_recipe_float_test": 94.2, "dcls_recipe_rounded_test": 93.5,
             "snn_no_delays_test": 92.3, "logmel_logreg_test": 97.0,
             "logmel_logreg_loso_mean": 63.6}


# ----------------------------------------------------------------------------- data folders


def recordings(data: Path) -> dict[str, dict[str, list[Path]]]:
    """``{split: {digit: [files]}}`` of the data set, files sorted by name."""
    return {split: {d.name: sorted(p for p in d.iterdir() if p.suffix == ".wav")
                    for d in sorted((data / split).iterdir()) if d.is_dir()}
            for split in ("train", "test")}


def speaker(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]


def limited(files: list[Path], limit: int | None) -> list[Path]:
    """The first ``limit`` of ``files`` taken in turn from each speaker (all without limit)."""
    if limit is None:
        return files
    turn = sorted(files, key=lambda p: (int(p.stem.rsplit("_", 1)[1]), speaker(p)))
    return sorted(turn[:limit])


def link_tree(root: Path, by_digit: dict[str, list[Path]]) -> Path:
    """A folder of label folders ``root/<digit>/<file>`` of symlinks to ``by_digit``'s files."""
    for digit, files in by_digit.items():
        (root / digit).mkdir(parents=True)
        for f in files:
            (root / digit / f.name).symlink_to(f.resolve())
    return root


def folders(data: Path, tmp: Path, limit: int | None,
            held_out: str | None = None) -> tuple[Path, Path]:
    """(train folder, test folder) in ``tmp``: train/ -> test/ of the data set, or with
    ``held_out`` a speaker's recordings (both splits) as test and the others' as train;
    ``limit`` recordings per class in each."""
    recs = recordings(data)
    if held_out is None:
        train = {d: limited(f, limit) for d, f in recs["train"].items()}
        test = {d: limited(f, limit) for d, f in recs["test"].items()}
    else:
        both = {d: recs["train"][d] + recs["test"].get(d, []) for d in recs["train"]}
        train = {d: limited([p for p in f if speaker(p) != held_out], limit)
                 for d, f in both.items()}
        test = {d: limited([p for p in f if speaker(p) == held_out], limit)
                for d, f in both.items()}
    return link_tree(tmp / "train", train), link_tree(tmp / "test", test)


# ----------------------------------------------------------------------------- jobs


def model_memory(model) -> dict:
    """Bits of the model's weights and delays: synapses x (w_bits + delay bits), per layer."""
    layers = []
    for layer in model.layers:
        synapses = layer.w.size + (layer.w_rec.size if layer.w_rec is not None else 0)
        d_bits = math.ceil(math.log2(layer.d_max + 1)) if layer.d_max > 0 else 0
        layers.append({"name": layer.name, "synapses": int(synapses), "w_bits": layer.w_bits,
                       "d_max": layer.d_max, "d_bits": d_bits,
                       "bits": int(synapses * (layer.w_bits + d_bits))})
    return {"bits": sum(l["bits"] for l in layers), "layers": layers}


def core_memory(model, scheme: str, lanes: int) -> dict:
    """The generated core's memories (the cost model's ``CoreShape.memory_bits``)."""
    from delayhw.gateware.shape import CoreShape
    return CoreShape.from_model(model, lanes, scheme).memory_bits()


def epoch_options(settings: dict) -> dict:
    """``--epochs N``: N float epochs and min(N, 5) QAT epochs (a smoke run); else none."""
    n = settings["epochs"]
    return {} if n is None else {"epochs": n, "qat_epochs": min(n, 5)}


def _loads() -> float:
    return round(os.getloadavg()[0], 2)


def train_job(key: str, settings: dict) -> dict:
    """One training run (a worker process, one torch thread): ``key`` is ``seeds/S``,
    ``loso/SPEAKER``, ``loso_frozen/SPEAKER`` or ``variant/NAME``; ``seeds/*`` also runs the
    test set in RTL."""
    import torch
    torch.set_num_threads(1)
    from delayhw.formats import load_model
    from delayhw.train.api import train_task

    load_start, t_job = _loads(), time.perf_counter()
    kind, name = key.split("/")
    seed = int(name) if kind == "seeds" else 0
    options = (dict(VARIANTS[name]) if kind == "variant"
               else dict(VARIANTS["frozen"]) if kind == "loso_frozen" else {})
    options.update(epoch_options(settings))
    out: dict = {"key": key, "settings": settings, "seed": seed, "options_given": options}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train_dir, test_dir = folders(Path(settings["data"]), tmp / "data", settings["limit"],
                                      held_out=name if kind.startswith("loso") else None)
        t0 = time.perf_counter()
        r = train_task(str(train_dir), tmp / "m.npz", test=str(test_dir), seed=seed,
                       quiet=True, nir=False, threads=1, **options)
        out["train_seconds"] = time.perf_counter() - t0
        log = json.loads(r.log_path.read_text())
        model = load_model(r.model_path)
        out.update({
            "float_acc": 100 * r.float_accuracy, "int_acc": 100 * r.integer_accuracy,
            "soft_acc": 100 * r.soft_accuracy, "n_train": log["task"].get("train"),
            "n_test": log["task"].get("test"),
            "options": {k: log["options"][k] for k in (
                "hidden", "d_max", "w_bits", "freeze_delays", "beta", "beta_out", "epochs",
                "batch_size", "lr", "lr_schedule", "label_smoothing", "qat_epochs")},
            "encoding": log["task"].get("encoding"),
            "sec_per_epoch": float(np.mean([h["seconds"] for h in r.history
                                            if h["phase"] == "float"] or [0.0])),
            "memory": model_memory(model),
            "core_memory_bits": core_memory(model, settings["scheme"], settings["lanes"])})
        if kind == "seeds":
            out["rtl"] = rtl_check(model, r.test_input_path, settings)
    out["seconds"] = time.perf_counter() - t_job
    out["loadavg_start_end"] = [load_start, _loads()]
    return out


def rtl_check(model, test_input: Path, settings: dict) -> dict:
    """Every test sample in Verilator against the golden model: mismatching samples (scores
    or spikes), RTL accuracy, cycles per sample (measured; and the cost model's)."""
    from delayhw import golden
    from delayhw.formats import load_input
    from delayhw.gateware import protocol
    from delayhw.gateware.shape import CoreShape
    from delayhw.sim.cosim import run_rtl

    test = load_input(test_input, model)
    ref = golden.run(model, test.spikes)
    t0 = time.perf_counter()
    run = run_rtl(model, test.spikes, sim="verilator", scheme=settings["scheme"],
                  lanes=settings["lanes"])
    seconds = time.perf_counter() - t0
    rtl = run.result
    bad = np.zeros(len(test.spikes), dtype=bool)
    bad |= np.any(rtl.scores != ref.scores, axis=1)
    for a, b in zip(rtl.spikes, ref.spikes):
        bad |= np.any(a != b, axis=(1, 2))
    shape = CoreShape.from_model(model, settings["lanes"], settings["scheme"])
    modelled = [shape.sample_cycles(test.spikes[i], [s[i] for s in ref.spikes])
                for i in range(len(test.spikes))]
    n_config = sum(1 for _ in protocol.config_stream(model))
    lane_choice = {}                  # the cost model at other lane counts (first 20 samples)
    for lanes in (1, 2, 4, 8, 16, 32):
        other = CoreShape.from_model(model, lanes, settings["scheme"])
        lane_choice[lanes] = {
            "cycles_per_sample": float(np.mean([
                other.sample_cycles(test.spikes[i], [s[i] for s in ref.spikes])
                for i in range(min(20, len(test.spikes)))])),
            "memory_bits": other.memory_bits()["total"]}
    return {"sim": "verilator", "scheme": settings["scheme"], "lanes": settings["lanes"],
            "cost_model_by_lanes": lane_choice,
            "samples": int(len(test.spikes)), "mismatched_samples": int(bad.sum()),
            "scores_equal": bool(np.array_equal(rtl.scores, ref.scores)),
            "rtl_acc": 100 * rtl.accuracy(test.labels),
            "golden_acc": 100 * ref.accuracy(test.labels),
            "cycles": int(run.cycles),
            "config_words": n_config,
            "cycles_per_sample": run.cycles / len(test.spikes),
            "cycles_per_sample_less_config": (run.cycles - n_config) / len(test.spikes),
            "cycles_note": "measured: all cycles after reset (the configuration stream "
                           "included) / samples; less config: without one cycle per "
                           "configuration word; cost model: CoreShape.sample_cycles of each "
                           "sample from its golden spikes, mean",
            "cycles_per_sample_cost_model": float(np.mean(modelled)),
            "sim_seconds": run.sim_seconds, "seconds": seconds}


def dcls_job(key: str, settings: dict) -> dict:
    """The default network with Dcls1d layers, trained by delayhw.train's float loop on the
    trainer's own encoding of train/ -> test/ (seed 0)."""
    import torch
    torch.set_num_threads(1)
    from _dcls import dcls_net
    from delayhw.train.api import TrainOptions
    from delayhw.train.data import audio_folders
    from delayhw.train.defaults import derive_defaults
    from delayhw.train.layers import DelayNet, NetConfig
    from delayhw.train.loop import FitConfig, Reporter, accuracy, fit_float, float_logits

    load_start, t_job = _loads(), time.perf_counter()
    seed = 0
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, test_dir = folders(Path(settings["data"]), Path(tmp), settings["limit"])
        splits = audio_folders(train_dir, test_dir, seed=seed, val=0.0)
    derived = derive_defaults(len(splits.train), splits.steps, splits.n_inputs,
                              splits.n_classes)
    given = epoch_options(settings)
    opts = TrainOptions(seed=seed, **given).resolved(
        "file", {k: v for k, (v, _) in derived.items() if k not in given},
        has_val=False).validate()
    torch.manual_seed(seed)
    config = NetConfig(n_inputs=splits.n_inputs, n_classes=splits.n_classes,
                       hidden=tuple(opts.hidden), d_max=opts.d_max, recurrent=opts.recurrent,
                       kernel=opts.delay_kernel, beta=opts.beta, beta_out=opts.beta_out,
                       reset=opts.reset, bias=opts.bias, seed=seed)
    net = dcls_net(DelayNet(config))
    fit = FitConfig(epochs=opts.epochs, qat_epochs=opts.qat_epochs, batch_size=opts.batch_size,
                    lr=opts.lr, lr_delay=opts.lr_delay, lr_qat=opts.lr_qat,
                    lr_schedule=opts.lr_schedule, label_smoothing=opts.label_smoothing,
                    select=opts.select, seed=seed)
    t0 = time.perf_counter()
    fit_float(net, splits, fit, Reporter(quiet=True))
    train_seconds = time.perf_counter() - t0
    learned = accuracy(float_logits(net), splits.test)
    net.round_delays_()
    rounded = accuracy(float_logits(net), splits.test)
    import importlib.metadata as md
    return {"key": key, "settings": settings, "seed": seed, "dcls_version": md.version("dcls"),
            "float_acc_learned": 100 * learned, "float_acc_rounded": 100 * rounded,
            "train_seconds": train_seconds, "n_train": len(splits.train),
            "n_test": len(splits.test),
            "options": {"hidden": list(opts.hidden), "d_max": opts.d_max, "beta": opts.beta,
                        "beta_out": opts.beta_out, "epochs": opts.epochs,
                        "batch_size": opts.batch_size, "lr": opts.lr,
                        "lr_schedule": opts.lr_schedule,
                        "label_smoothing": opts.label_smoothing},
            "seconds": time.perf_counter() - t_job,
            "loadavg_start_end": [load_start, _loads()]}


def frontend_job(settings: dict, n_reference: int = 4) -> dict:
    """Encode every recording (train/ and test/, the encoding derived from train/ as the
    trainer does) and a few with the plain-loop spec; their spikes must be equal."""
    from delayhw.audio import encode
    from delayhw.audio_files import derive_encoding, encode_files, read_recording, scan
    from delayhw.reference import encode_audio

    load_start = _loads()
    with tempfile.TemporaryDirectory() as tmp:
        train_dir, test_dir = folders(Path(settings["data"]), Path(tmp), settings["limit"])
        train_recs, classes = scan([train_dir])
        enc = derive_encoding(train_recs)
        recs, classes = scan([train_dir, test_dir])
        audio_s = sum(r.seconds for r in recs)
        t0 = time.perf_counter()
        encoded = encode_files(recs, classes, enc)
        wall = time.perf_counter() - t0
        # the spec on a few recordings spread over the lengths (its time is per audio second)
        by_length = sorted(range(len(recs)), key=lambda i: recs[i].frames)
        picks = [by_length[int(q * (len(recs) - 1))] for q in np.linspace(0.25, 0.75, n_reference)]
        ref_s = fast_s = ref_audio = 0.0
        equal = True
        encode(read_recording(recs[picks[0]].path, enc, recs[picks[0]]), enc)   # warm-up
        for i in picks:
            samples = read_recording(recs[i].path, enc, recs[i])
            t0 = time.perf_counter()
            spec = np.array(encode_audio(samples, enc), dtype=np.uint8)
            ref_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            fast = encode(samples, enc)
            fast_s += time.perf_counter() - t0
            ref_audio += recs[i].seconds
            equal &= bool(np.array_equal(spec, fast)) and bool(
                np.array_equal(fast, encoded.spikes[i]))
    if not equal:
        raise AssertionError("frontend: delayhw.audio.encode differs from the plain-loop spec")
    per_audio = wall / audio_s
    ref_per_audio = ref_s / ref_audio
    return {"key": "frontend", "settings": settings, "recordings": len(recs),
            "audio_seconds": round(audio_s, 2), "encode_wall_seconds": round(wall, 3),
            "encode_seconds_per_audio_second": per_audio,
            "realtime_factor": 1 / per_audio,
            "encoding": enc.to_json(), "spike_rate": float(encoded.spikes.mean()),
            "reference_recordings": len(picks), "reference_audio_seconds": round(ref_audio, 3),
            "reference_seconds": round(ref_s, 3),
            "reference_seconds_per_audio_second": ref_per_audio,
            "single_encode_seconds_per_audio_second": fast_s / ref_audio,
            "speedup_over_reference": ref_per_audio / per_audio,
            "reference_spikes_equal": equal,
            "loadavg_start_end": [load_start, _loads()]}


def run_job(key: str, settings: dict) -> dict:
    return dcls_job(key, settings) if key.startswith("dcls/") else train_job(key, settings)


def job_keys(only: list[str], seeds: int) -> list[str]:
    keys = []
    if "seeds" in only or "bits" in only:           # seed 0 is also the bits sweep's w8
        keys += [f"seeds/{s}" for s in range(seeds if "seeds" in only else 1)]
    if "loso" in only:
        keys += [f"loso/{s}" for s in SPEAKERS]
    if "frozen" in only:
        keys += ["variant/frozen"] + [f"loso_frozen/{s}" for s in SPEAKERS]
    if "bits" in only:
        keys += [f"variant/{v}" for v in BITS_VARIANTS]
    if "dcls" in only:
        keys.append("dcls/0")
    # seeds 1.. last: they wait for seed 0's simulator build (one build for every seed)
    return sorted(keys, key=lambda k: k.startswith("seeds/") and k != "seeds/0")


# ----------------------------------------------------------------------------- summary


def _mean_std(values: list[float]) -> dict:
    a = np.array(values, dtype=float)
    return {"values": a.round(2).tolist(), "mean": round(float(a.mean()), 2),
            "std": round(float(a.std()), 2)}


def summarise(jobs: dict[str, dict]) -> dict:
    out: dict = {}
    if "frontend" in jobs:
        f = jobs["frontend"]
        out["frontend"] = {k: (round(v, 6) if isinstance(v, float) else v)
                           for k, v in f.items() if k not in ("key", "settings")}
    seeds = [j for k, j in sorted(jobs.items()) if k.startswith("seeds/")]
    if seeds:
        rtl = [j["rtl"] for j in seeds]
        out["seeds"] = {
            "seeds": [j["seed"] for j in seeds],
            "float_acc": _mean_std([j["float_acc"] for j in seeds]),
            "int_acc": _mean_std([j["int_acc"] for j in seeds]),
            "rtl_acc": _mean_std([r["rtl_acc"] for r in rtl]),
            "rtl_mismatched_samples": sum(r["mismatched_samples"] for r in rtl),
            "rtl_samples": sum(r["samples"] for r in rtl),
            "rtl_equals_golden": all(r["mismatched_samples"] == 0 and r["scores_equal"]
                                     for r in rtl),
            "rtl_scheme": rtl[0]["scheme"], "rtl_lanes": rtl[0]["lanes"],
            "cycles_per_sample": round(float(np.mean([r["cycles_per_sample"] for r in rtl])), 1),
            "cycles_per_sample_less_config": round(float(np.mean(
                [r.get("cycles_per_sample_less_config", np.nan) for r in rtl])), 1),
            "cost_model_by_lanes": rtl[0].get("cost_model_by_lanes"),
            "cycles_per_sample_cost_model": round(float(np.mean(
                [r["cycles_per_sample_cost_model"] for r in rtl])), 1),
            "train_seconds": _mean_std([j["train_seconds"] for j in seeds]),
            "sec_per_epoch": round(float(np.mean([j["sec_per_epoch"] for j in seeds])), 3),
            "rtl_seconds": _mean_std([r["seconds"] for r in rtl]),
            "options": seeds[0]["options"], "memory_bits": seeds[0]["memory"]["bits"],
            "core_memory_bits": seeds[0]["core_memory_bits"]}
    loso = {k.split("/")[1]: j for k, j in jobs.items() if k.startswith("loso/")}
    if loso:
        out["loso"] = {"per_speaker": {s: {"int_acc": round(j["int_acc"], 2),
                                           "float_acc": round(j["float_acc"], 2),
                                           "n_train": j["n_train"], "n_test": j["n_test"]}
                                       for s, j in sorted(loso.items())},
                       "int_acc_mean": round(float(np.mean([j["int_acc"]
                                                            for j in loso.values()])), 2),
                       "float_acc_mean": round(float(np.mean([j["float_acc"]
                                                              for j in loso.values()])), 2)}
    variants = {k.split("/")[1]: j for k, j in jobs.items() if k.startswith("variant/")}
    if "frozen" in variants:
        j = variants["frozen"]
        out["frozen"] = {"int_acc": round(j["int_acc"], 2), "float_acc": round(j["float_acc"], 2)}
        frozen_loso = {k.split("/")[1]: j for k, j in jobs.items()
                       if k.startswith("loso_frozen/")}
        if frozen_loso:
            out["frozen"]["loso_per_speaker"] = {s: round(j["int_acc"], 2)
                                                 for s, j in sorted(frozen_loso.items())}
            out["frozen"]["loso_int_acc_mean"] = round(float(np.mean(
                [j["int_acc"] for j in frozen_loso.values()])), 2)
        if "seeds/0" in jobs:
            learned = {"test": jobs["seeds/0"]["int_acc"]}
            frozen = {"test": j["int_acc"]}
            if "loso" in out and frozen_loso:
                learned["loso_mean"] = out["loso"]["int_acc_mean"]
                frozen["loso_mean"] = out["frozen"]["loso_int_acc_mean"]
            out["learned_vs_frozen"] = {
                "rule": "learned delays beat frozen ones (integer accuracy, seed 0)",
                **{f"{k}_points": round(learned[k] - frozen[k], 2) for k in learned},
                "met": {k: learned[k] > frozen[k] for k in learned}}
    if "seeds/0" in jobs:
        variants["w8"] = jobs["seeds/0"]
    sweep = {}
    for name in ("w8",) + BITS_VARIANTS:
        if name in variants:
            j = variants[name]
            sweep[name] = {"w_bits": j["options"]["w_bits"], "d_max": j["options"]["d_max"],
                           "d_bits": max(l["d_bits"] for l in j["memory"]["layers"]),
                           "int_acc": round(j["int_acc"], 2),
                           "float_acc": round(j["float_acc"], 2),
                           "memory_bits": j["memory"]["bits"],
                           "core_memory_bits": j["core_memory_bits"]["total"]}
    if len(sweep) > 1:
        out["bits"] = sweep
        if "w8" in sweep:
            best4 = [s["int_acc"] for n, s in sweep.items() if s["w_bits"] == 4
                     and s["d_bits"] in (4, 5)]
            out["bits_target"] = {
                "rule": "4-bit weights with 4- or 5-bit delays within 1 point of 8-bit weights",
                "w8_int_acc": sweep["w8"]["int_acc"],
                "best_w4_int_acc": max(best4) if best4 else None,
                "met": bool(best4) and max(best4) >= sweep["w8"]["int_acc"] - 1.0}
    if "dcls/0" in jobs:
        j = jobs["dcls/0"]
        out["dcls"] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in j.items()
                       if k not in ("key", "settings", "loadavg_start_end")}
    return out


def markdown_table(s: dict) -> str:
    rows = []
    if "frontend" in s:
        f = s["frontend"]
        rows.append(("front-end, seconds per second of audio (all recordings)",
                     f"{f['encode_seconds_per_audio_second']:.4f} ({f['realtime_factor']:.0f}x "
                     f"real time; {f['speedup_over_reference']:.0f}x the plain-loop spec)"))
    if "seeds" in s:
        d = s["seeds"]
        n = len(d["seeds"])
        rows += [(f"test accuracy, defaults, {n} seeds: float / integer (golden)",
                  f"{d['float_acc']['mean']:.1f} ± {d['float_acc']['std']:.1f} / "
                  f"{d['int_acc']['mean']:.1f} ± {d['int_acc']['std']:.1f}"),
                 (f"RTL (Verilator, {d['rtl_scheme']}, {d['rtl_lanes']} lanes) accuracy; "
                  f"samples differing from golden",
                  f"{d['rtl_acc']['mean']:.1f} ± {d['rtl_acc']['std']:.1f}; "
                  f"{d['rtl_mismatched_samples']} of {d['rtl_samples']}"),
                 ("cycles per sample (RTL measured, less the configuration stream / "
                  "cost model)",
                  f"{d['cycles_per_sample_less_config']:.0f} / "
                  f"{d['cycles_per_sample_cost_model']:.0f}"),
                 ("training seconds per run (1 thread)",
                  f"{d['train_seconds']['mean']:.0f} ± {d['train_seconds']['std']:.0f}")]
    if "loso" in s:
        lo = s["loso"]
        per = ", ".join(f"{k} {v['int_acc']:.1f}" for k, v in lo["per_speaker"].items())
        rows.append(("leave one speaker out, integer (mean of 4)",
                     f"{lo['int_acc_mean']:.1f} ({per})"))
    if "frozen" in s:
        rows.append(("frozen delays, integer / float", f"{s['frozen']['int_acc']:.1f} / "
                                                      f"{s['frozen']['float_acc']:.1f}"))
        if "loso_int_acc_mean" in s["frozen"]:
            per = ", ".join(f"{k} {v:.1f}" for k, v in s["frozen"]["loso_per_speaker"].items())
            rows.append(("frozen delays, leave one speaker out, integer (mean of 4)",
                         f"{s['frozen']['loso_int_acc_mean']:.1f} ({per})"))
    if "bits" in s:
        for name, b in s["bits"].items():
            rows.append((f"{b['w_bits']}-bit weights, d_max {b['d_max']} ({b['d_bits']}-bit "
                         f"delays), integer; model memory",
                         f"{b['int_acc']:.1f}; {b['memory_bits'] / 8192:.1f} KiB"))
    if "dcls" in s:
        rows.append(("DCLS (Dcls1d, same network and spikes), float learned / rounded",
                     f"{s['dcls']['float_acc_learned']:.1f} / "
                     f"{s['dcls']['float_acc_rounded']:.1f}"))
    lines = ["| FSDD spoken digits (4 speakers) | figure |", "|---|---:|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def plot(s: dict, path: Path) -> Path:
    from delayhw.plots import pyplot, save
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    bits = s.get("bits", {})
    # accuracy vs weight bits (d_max default) and vs d_max (8-bit and 4-bit weights)
    d_default = bits["w8"]["d_max"] if "w8" in bits else None
    panels = ((axes[0], "w_bits", {"d_max default": lambda b: b["d_max"] == d_default}),
              (axes[1], "d_max", {f"{w}-bit weights": (lambda b, w=w: b["w_bits"] == w)
                                  for w in (8, 4)}))
    for ax, xkey, lines in panels:
        mem_ax = ax.twinx()
        for n, (label, keep) in enumerate(lines.items()):
            pts = sorted((b[xkey], b["int_acc"], b["memory_bits"] / 8192)
                         for b in bits.values() if keep(b))
            if not pts:
                continue
            x, acc, mem = zip(*pts)
            ax.plot(x, acc, "o-", color=f"C{n}", label=f"integer accuracy, {label}")
            mem_ax.plot(x, mem, "s--", color=f"C{n}", alpha=0.4, label=f"memory, {label}")
        ax.set(xlabel=xkey, ylabel="test accuracy (%), integer (golden)")
        ax.set_xticks(sorted({b[xkey] for b in bits.values()}))
        mem_ax.set_ylabel("model memory, weights + delays (KiB)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = mem_ax.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower right")
    axes[0].set_title("accuracy and memory vs weight bits")
    axes[1].set_title("accuracy and memory vs d_max")
    # summary bars
    names, means, stds = [], [], []
    if "seeds" in s:
        for k, label in (("float_acc", "float"), ("int_acc", "integer"), ("rtl_acc", "RTL")):
            names.append(label)
            means.append(s["seeds"][k]["mean"])
            stds.append(s["seeds"][k]["std"])
    if "loso" in s:
        for spk, v in s["loso"]["per_speaker"].items():
            names.append(f"LOSO {spk}")
            means.append(v["int_acc"])
            stds.append(0)
        names.append("LOSO mean")
        means.append(s["loso"]["int_acc_mean"])
        stds.append(0)
    if "frozen" in s:
        names.append("frozen")
        means.append(s["frozen"]["int_acc"])
        stds.append(0)
        if "loso_int_acc_mean" in s["frozen"]:
            names.append("frozen LOSO mean")
            means.append(s["frozen"]["loso_int_acc_mean"])
            stds.append(0)
    if "dcls" in s:
        names += ["DCLS learned", "DCLS rounded"]
        means += [s["dcls"]["float_acc_learned"], s["dcls"]["float_acc_rounded"]]
        stds += [0, 0]
    ax = axes[2]
    ax.bar(range(len(names)), means, yerr=stds, capsize=2,
           color=["C0" if n in ("float", "integer", "RTL") else "C1" if n.startswith("LOSO")
                  else "C2" if n.startswith("frozen") else "C3" for n in names])
    for x, m in enumerate(means):
        ax.text(x, m + 0.5, f"{m:.1f}", ha="center", va="bottom", fontsize=6)
    ref = REFERENCE["dcls_recipe_float_test"]
    ax.axhline(ref, color="k", ls="--", lw=0.8)
    ax.text(-0.5, ref + 1, "data README: DCLS recipe on its own front-end (test/)",
            fontsize=6, va="bottom")
    ax.set(xticks=range(len(names)), ylabel="test accuracy (%)", ylim=(0, 110),
           title="seeds (mean ± std); LOSO, frozen: integer; DCLS: float")
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return save(fig, path, "delayhw on FSDD spoken digits (bench/audio.py)")


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA), metavar="DIR",
                    help="the FSDD folder with train/ and test/ (default shared/data/fsdd "
                         "beside the checkout)")
    ap.add_argument("--name", default="audio",
                    help="result name: bench/results/NAME.json, NAME.png, NAME.jobs.json")
    ap.add_argument("--only", default=",".join(KEYS), metavar="KEYS",
                    help=f"comma-separated parts to run, of {','.join(KEYS)} (default all)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the defaults-only runs")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (1 thread each)")
    ap.add_argument("--resume", action="store_true", help="keep finished jobs of a stopped run")
    ap.add_argument("--epochs", type=int, help="N float epochs (not the derived number) and "
                                               "min(N, 5) QAT epochs (smoke runs)")
    ap.add_argument("--limit", type=int, help="recordings per class in every folder (smoke runs)")
    ap.add_argument("--scheme", default="ring", help="the RTL runs' delay scheme")
    ap.add_argument("--lanes", type=int, default=8, help="the RTL runs' lanes")
    args = ap.parse_args()
    only = args.only.split(",")
    bad = [k for k in only if k not in KEYS]
    if bad:
        ap.error(f"--only: unknown part(s) {bad}; choose from {','.join(KEYS)}")
    if not Path(args.data, "train").is_dir() or not Path(args.data, "test").is_dir():
        ap.error(f"--data: {args.data} has no train/ and test/ folders")
    if "dcls" in only:
        import DCLS  # noqa: F401  (the `dcls` distribution; fail early if it is missing)
    settings = {"data": str(Path(args.data).resolve()), "epochs": args.epochs,
                "limit": args.limit, "scheme": args.scheme, "lanes": args.lanes}

    cache = RESULTS / f"{args.name}.jobs.json"
    done: dict[str, dict] = {}
    if args.resume and cache.exists():
        done = {j["key"]: j for j in json.loads(cache.read_text())
                if j.get("settings") == settings}
    RESULTS.mkdir(parents=True, exist_ok=True)

    def keep(job: dict) -> None:
        done[job["key"]] = job
        cache.write_text(json.dumps(list(done.values()), indent=1) + "\n")

    t_start, load_before = time.perf_counter(), os.getloadavg()
    if "frontend" in only and "frontend" not in done:
        print("timing the front-end (alone) ...", flush=True)
        keep(frontend_job(settings))
    todo = [k for k in job_keys(only, args.seeds) if k not in done]
    from rich.progress import Progress
    with Progress() as progress, ProcessPoolExecutor(args.jobs) as pool:
        bar = progress.add_task("training runs", total=len(todo))
        futures = {pool.submit(run_job, key, settings): key for key in todo}
        for fut in as_completed(futures):
            job = fut.result()
            keep(job)
            if job["key"].startswith("dcls/"):
                line = (f"float learned {job['float_acc_learned']:.1f}% rounded "
                        f"{job['float_acc_rounded']:.1f}%")
            else:
                line = f"float {job['float_acc']:.1f}% integer {job['int_acc']:.1f}%"
                if "rtl" in job:
                    line += (f" RTL {job['rtl']['rtl_acc']:.1f}% "
                             f"({job['rtl']['mismatched_samples']} mismatched)")
            progress.console.print(f"{job['key']:>16}: {line} ({job['seconds']:.0f} s)")
            progress.advance(bar)

    wanted = set(job_keys(only, args.seeds)) | ({"frontend"} if "frontend" in only else set())
    summary = summarise({k: j for k, j in done.items() if k in wanted})
    png = plot(summary, RESULTS / f"{args.name}.png")
    table = markdown_table(summary)
    import torch
    write_result(args.name, {
        "command": "python bench/audio.py " + " ".join(sys.argv[1:]),
        "torch": torch.__version__, "torch_threads": 1, "jobs_in_parallel": args.jobs,
        "settings": settings,
        # with --resume, jobs of earlier invocations are reused: each job records its own
        # seconds and load; these two fields cover this invocation only
        "resumed": bool(args.resume),
        "wall_seconds_this_invocation": round(time.perf_counter() - t_start, 1),
        "loadavg_before_after_this_invocation": [round(load_before[0], 2), _loads()],
        "job_seconds_sum": round(sum(done[k].get("seconds", 0.0) for k in wanted
                                     if k in done), 1),
        "targets": {"rtl_mismatched_samples": 0,
                    "w4_with_4_or_5_bit_delays_within_points_of_w8": 1.0},
        "reference_readme": REFERENCE,
        "plot": str(png.relative_to(RESULTS.parent.parent)), "markdown": table,
        "summary": summary,
        "jobs": [done[k] for k in sorted(wanted) if k in done]})
    print(table)
    if "seeds" in summary and not summary["seeds"]["rtl_equals_golden"]:
        sys.exit(f"RTL differs from the golden model in "
                 f"{summary['seeds']['rtl_mismatched_samples']} samples")


if __name__ == "__main__":
    main()
