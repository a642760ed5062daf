"""Audio commands: ``encode`` (recordings -> an input file) and ``classify`` (recordings ->
a model's predictions on the golden model, in RTL or on a board). Recordings are folders of
label folders or single audio files (docs/audio_files.md)."""

from __future__ import annotations

import argparse
import sys

from ..publish import show_path
from .common import (EXIT_MISMATCH, EXIT_OK, SIM_CHOICES, add_core_options, add_force,
                     TIMEOUT, add_link_options, link_baud, progress, report_against_golden)

_AUDIO_HELP = ("recordings: folders of label folders (DIR/<class>/<file>.wav) or single "
               ".wav/.flac/.ogg files")


def _model_encoding(path: str):
    """The model at ``path`` and the audio encoding and class names it records."""
    from ..audio_files import model_audio
    from ..formats import load_model

    model = load_model(path)
    enc, classes = model_audio(model, show_path(path))
    return model, enc, classes


def _encode(arguments, enc=None, classes=None, known_from: str = "the model"):
    """Scan and check AUDIO ``arguments`` (headers only), then encode them with a progress
    bar: with ``enc``/``classes`` given, else with the encoding derived from them."""
    from ..audio_files import check_encoding_memory, derive_encoding, encode_files, scan

    recordings, names = scan(arguments, classes, known_from=known_from)
    enc = derive_encoding(recordings) if enc is None else enc
    check_encoding_memory(recordings, enc)          # refused before the bar starts
    with progress() as bar:
        task = bar.add_task(f"encoding {len(recordings)} recordings", total=len(recordings))
        return encode_files(recordings, names, enc,
                            progress=lambda n: bar.advance(task, n))


def cmd_encode(args: argparse.Namespace) -> int:
    from ..publish import Outputs

    outputs = Outputs(force=args.force, inputs=[*args.audio, args.model])
    staged = outputs.file(args.out)
    with outputs:                   # published when the block ends without an error
        if args.model is not None:
            _, enc, classes = _model_encoding(args.model)
            data = _encode(args.audio, enc, classes, f"the model {show_path(args.model)}")
            how = f"the encoding of {show_path(args.model)}"
        else:
            data = _encode(args.audio)
            how = "the encoding derived from these recordings"
        data.save(staged)
    labelled = int((data.labels >= 0).sum())
    enc = data.encoding
    print(f"encoded {len(data.files)} recordings ({labelled} labelled, {len(data.classes)} "
          f"classes) with {how}: {enc.steps} steps x {enc.n_channels} channels ({enc.bands} "
          f"bands x {enc.levels} levels, {enc.step_ms:g} ms steps at {enc.sample_rate} Hz) "
          f"-> {show_path(args.out)}" + ("" if data.labelled else
                                         " (no labels array: not every recording has one)"))
    return EXIT_OK


def _run_engine(args, model, spikes):
    """``(result, who)`` of running ``spikes`` on ``args.engine``; RTL and board runs are
    compared with the golden model (``who`` is None for the golden model itself)."""
    from .. import golden

    if args.engine == "golden":
        return golden.run(model, spikes), None
    batch, steps = spikes.shape[:2]
    from ..gateware.shape import CoreShape
    shape = CoreShape.from_model(model, args.lanes, args.scheme)
    if args.engine in SIM_CHOICES:
        from ..sim import cosim
        with progress() as bar:
            task = bar.add_task(f"{args.engine}: {batch} samples x {steps} steps", total=batch)
            run = cosim.run_rtl(model, spikes, sim=args.engine, scheme=args.scheme,
                                lanes=args.lanes,
                                on_progress=lambda n: bar.update(task, completed=n))
        return run.result, "RTL"
    from ..boards.runtime import open_port, run_samples
    if args.engine.startswith("sim:"):
        print(f"{args.engine}: building (once per core shape) and starting the simulated "
              f"board", file=sys.stderr)
    with open_port(args.engine, shape, baud=link_baud(args), timeout=args.timeout) as port, \
            progress() as bar:
        task = bar.add_task(f"{args.engine}: {batch} samples x {steps} steps", total=batch)
        run = run_samples(port, model, shape, spikes,
                          on_sample=lambda n: bar.update(task, completed=n))
    return run.result, "board"


def _check_engine(args, model) -> None:
    """Refuse an engine that cannot run ``model`` before any recording is encoded."""
    if args.engine == "golden":
        return
    from ..gateware.shape import CoreShape
    CoreShape.from_model(model, args.lanes, args.scheme)
    if args.engine in SIM_CHOICES:
        from ..sim import runner
        runner.check_simulator(args.engine)


def _write_csv(path, data, result, classes) -> None:
    import csv

    with open(path, "x", newline="") as f:
        out = csv.writer(f)
        out.writerow(["file", "predicted", "true", "correct", *(f"score:{c}" for c in classes)])
        for i, name in enumerate(data.files):
            label = int(data.labels[i])
            pred = int(result.predictions[i])
            out.writerow([name, classes[pred], classes[label] if label >= 0 else "",
                          "" if label < 0 else int(pred == label),
                          *(int(s) for s in result.scores[i])])


def cmd_classify(args: argparse.Namespace) -> int:
    from ..formats import Inputs
    from ..publish import Outputs

    outputs = Outputs(force=args.force, inputs=[args.model, *args.audio])
    staged = outputs.file(args.out) if args.out is not None else None
    with outputs:                   # published when the block ends without an error
        model, enc, classes = _model_encoding(args.model)
        _check_engine(args, model)
        data = _encode(args.audio, enc, classes, f"the model {show_path(args.model)}")
        result, who = _run_engine(args, model, data.spikes)
        for i, name in enumerate(data.files):
            label, pred = int(data.labels[i]), int(result.predictions[i])
            truth = "" if label < 0 else (f"  (true {classes[label]}"
                                          f"{'' if pred == label else ', WRONG'})")
            print(f"{show_path(name)}: {classes[pred]}{truth}")
        known = data.labels >= 0
        n_known = int(known.sum())
        if n_known:
            right = int((result.predictions[known] == data.labels[known]).sum())
            print(f"accuracy ({args.engine}): {100 * right / n_known:.2f}% ({right}/{n_known} "
                  f"labelled recordings" + ("" if n_known == len(known) else
                                             f"; {len(known) - n_known} without a label") + ")")
        else:
            print(f"accuracy: no recording has a label (a folder of label folders gives them)")
        difference = None
        if who is not None:
            difference = report_against_golden(model, Inputs(data.spikes), result, who)
        if staged is not None:
            _write_csv(staged, data, result, classes)
    if args.out is not None:
        print(f"results written to {show_path(args.out)}")
    return EXIT_OK if difference is None else EXIT_MISMATCH


def register(sub) -> None:
    p = sub.add_parser(
        "encode", help="turn recordings into an input file (the audio front-end)",
        description="Encode recordings (WAV/FLAC/OGG; any sample rate, mixed to mono) into a "
                    "spike input file with labels, class names, file names and the encoding "
                    "(docs/audio.md). Without --model the encoding is derived from these "
                    "recordings; with --model the model's recorded encoding and class names "
                    "are used (a label folder the model does not know is refused).")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help=_AUDIO_HELP)
    p.add_argument("--out", required=True, metavar="INPUT.npz", help="input file to write")
    p.add_argument("--model", metavar="MODEL.npz",
                   help="encode with this model's encoding and class names")
    add_force(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser(
        "classify", help="classify recordings with a model trained on recordings",
        description="Encode recordings with MODEL's encoding, run them on ENGINE and print "
                    "one line per recording (file, predicted class, true class when its "
                    "folder gives one) and the accuracy. RTL and board engines are also "
                    "compared with the golden model bit for bit (exit 1 on a difference).")
    p.add_argument("model", metavar="MODEL", help="model file trained on recordings (.npz)")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help=_AUDIO_HELP)
    p.add_argument("--engine", default="golden", metavar="ENGINE",
                   help="golden (default), verilator or icarus (co-simulation), or a board's "
                        "serial PORT (e.g. /dev/ttyUSB1) or sim:verilator / sim:icarus (the "
                        "simulated board)")
    p.add_argument("--out", metavar="RESULTS.csv",
                   help="also write a CSV: file, predicted, true, correct, score per class")
    add_core_options(p, lanes_default=1)
    add_link_options(p)
    p.add_argument("--timeout", type=TIMEOUT, default=10.0,
                   help="seconds to wait for a board's reply (default 10)")
    add_force(p)
    p.set_defaults(func=cmd_classify)
