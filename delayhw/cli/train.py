"""``delayhw train`` and ``delayhw export``: the trainer's commands (torch imported lazily)."""

from __future__ import annotations

import argparse

from ..spec import LIMITS, RESETS
from .common import EXIT_OK, add_force, float_in, fraction, int_in, seed, sizes

#: Ranges of the trainer's numeric options (docs/cli-limits.md); sizes and bit widths are
#: the model format's (docs/design.md section 3), the rest bound the work to something sane.
EPOCHS = int_in(0, 100_000)
BATCH = int_in(1, 65_536)
LR = float_in(0, 1_000)
THREADS = int_in(1, 1_024)
SAMPLES = int_in(1, 10_000_000)
HIDDEN = sizes(*LIMITS["size"], count=8)

_TASK_HELP = ("synthetic (a task only delays solve), digits (scikit-learn digits, latency "
              "coded), shd / ssc (HDF5 files in --data DIR), an input file (.npz with "
              "spikes and labels; the training file when --test is given), or a folder of "
              "recordings in label folders (DIR/<class>/<file>.wav; the encoding is derived "
              "from it and recorded in the model, docs/audio.md)")


def cmd_train(args: argparse.Namespace) -> int:
    from ..publish import show_path
    from ..train.api import train_task

    options = {name: getattr(args, name) for name in (
        "epochs", "qat_epochs", "batch_size", "lr", "lr_delay", "lr_qat", "lr_schedule",
        "label_smoothing",
        "hidden", "d_max", "recurrent", "delay_kernel", "beta", "beta_out", "reset", "bias",
        "freeze_delays", "w_bits", "v_bits", "f_bits", "seed", "device", "threads", "limit",
        "test", "val_fraction", "select")}
    options["data_dir"] = args.data
    report = train_task(args.task, args.out, quiet=args.quiet, force=args.force,
                        plots_dir=args.plots, nir=not args.no_nir, **options)
    if args.quiet:      # the one line a script wants: the result and where it went
        print(f"{show_path(report.model_path)}: test accuracy float {100 * report.float_accuracy:.2f}%, "
              f"integer model (golden) {100 * report.integer_accuracy:.2f}%")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from .. import golden
    from ..formats import load_input, save_model
    from ..publish import Outputs, show_path
    from ..train.nir_io import read_nir
    from ..train.quant import choose_quant, export_model

    outputs = Outputs(force=args.force, inputs=[args.network, args.input])
    staged = outputs.file(args.out)
    with outputs:                     # published only when the network and --input are good
        net = read_nir(args.network)
        spec = choose_quant(net, w_bits=args.w_bits, f_bits=args.f_bits, v_bits=args.v_bits)
        model = export_model(net, spec, {"trainer": "delayhw export (post-training "
                                                    "quantisation)", "source": str(args.network)})
        inputs = None if args.input is None else load_input(args.input, model)
        save_model(model, staged)
    print(f"export: {show_path(args.network)} -> {show_path(args.out)} (" + ", ".join(
        f"{l.name}[{l.size} {l.kind}, w{l.w_bits} v{l.v_bits} d_max {l.d_max}]"
        for l in model.layers) + ")")
    if inputs is not None:
        result = golden.run(model, inputs.spikes)
        if inputs.labels is not None:
            print(f"accuracy (golden): {100 * result.accuracy(inputs.labels):.2f}%")
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train weights and per-synapse delays, export a hardware model",
        description="Train a spiking network with learnable per-synapse delays (float, then "
                    "quantisation-aware), export the integer model file and check it with the "
                    "golden model. Writes next to --out: NAME.test.npz (test inputs with "
                    "labels), NAME.nir (float network), NAME.log.json and PNG plots "
                    "(curves, delay histograms, a spike raster).")
    p.add_argument("--task", required=True, help=_TASK_HELP)
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="model file to write")
    p.add_argument("--test", metavar="TEST.npz|DIR",
                   help="with --task TRAIN.npz: the test file (labelled input file); with "
                        "--task DIR: the test folder of label folders (classes of DIR only). "
                        "Only reported on, never used to choose anything. Without it, the "
                        "task's file or folder is split 70/15/15 into train/validation/test")
    p.add_argument("--val-fraction", type=float_in(0, 1, hi_open=True), metavar="F",
                   help="fraction of the training data held out for validation (0 allowed; "
                        "default 0 with --test, 0.15 without)")
    p.add_argument("--select", choices=("best", "last"),
                   help="keep the epoch with the best validation accuracy, or the last "
                        "(default: best with a validation set, else last)")
    p.add_argument("--data", metavar="DIR", help="folder with {shd,ssc}_{train,test}.h5")
    p.add_argument("--limit", type=SAMPLES, help="use at most this many samples per SHD/SSC file")
    g = p.add_argument_group("network (defaults: the task's preset; for an input file derived "
                             "from its size and shape, see docs/train.md)")
    g.add_argument("--hidden", type=HIDDEN, help="hidden layer sizes, e.g. 32 or 64,32")
    g.add_argument("--d-max", type=int_in(*LIMITS["d_max"]), help="largest delay in steps")
    g.add_argument("--recurrent", action="store_true", help="recurrent delayed connections")
    g.add_argument("--delay-kernel", choices=("linear", "triangle", "gaussian"),
                   help="how a real delay spreads over integer bins while training")
    g.add_argument("--beta", type=fraction, help="hidden membrane decay per step (0..1)")
    g.add_argument("--beta-out", type=fraction, help="readout membrane decay per step (0..1)")
    g.add_argument("--reset", choices=RESETS, default="subtract")
    g.add_argument("--bias", action="store_true", help="learn a bias per unit")
    g.add_argument("--freeze-delays", action="store_true",
                   help="keep every delay at its minimum (baseline without learned delays)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=EPOCHS, help="float training epochs")
    g.add_argument("--qat-epochs", type=EPOCHS, help="quantisation-aware fine-tuning epochs")
    g.add_argument("--batch-size", type=BATCH, help="samples per batch")
    g.add_argument("--lr", type=LR, help="learning rate of weights")
    g.add_argument("--lr-delay", type=LR, help="learning rate of delays (steps)")
    g.add_argument("--lr-qat", type=LR, help="learning rate during QAT")
    g.add_argument("--lr-schedule", choices=("onecycle", "cosine"),
                   help="weights' learning-rate schedule in float training")
    g.add_argument("--label-smoothing", type=float_in(0, 1, hi_open=True),
                   help="cross-entropy label smoothing in [0, 1) (own files: 0.1, tasks: 0)")
    g.add_argument("--seed", type=seed, default=0)
    g.add_argument("--device", default="auto", help="auto, cpu or cuda")
    g.add_argument("--threads", type=THREADS, help="torch CPU threads (small nets: 1 is fastest)")
    g = p.add_argument_group("integer model (docs/design.md section 3)")
    g.add_argument("--w-bits", type=int_in(*LIMITS["w_bits"]), default=8, help="weight width (2..16, default 8)")
    g.add_argument("--v-bits", type=int_in(*LIMITS["v_bits"]), help="membrane width (4..32; default: worst case, "
                                              "at most 24)")
    g.add_argument("--f-bits", type=int_in(*LIMITS["f_bits"]), default=8, help="decay fraction bits (1..16, default 8)")
    g = p.add_argument_group("outputs")
    g.add_argument("--plots", metavar="DIR", help="write the log and plots here instead")
    g.add_argument("--no-nir", action="store_true", help="do not write NAME.nir")
    g.add_argument("--quiet", action="store_true",
                   help="no progress bar or per-epoch lines: one result line")
    add_force(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "export", help="quantise a float network (NIR) into a model file",
        description="Post-training quantisation of a float delay network stored as NIR (as "
                    "written by 'delayhw train', see docs/train.md) into a delayhw model file. "
                    "No fine-tuning: 'delayhw train' does quantisation-aware training.")
    p.add_argument("network", metavar="NET.nir", help="float network (NIR file)")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="model file to write")
    p.add_argument("--w-bits", type=int_in(*LIMITS["w_bits"]), default=8)
    p.add_argument("--v-bits", type=int_in(*LIMITS["v_bits"]))
    p.add_argument("--f-bits", type=int_in(*LIMITS["f_bits"]), default=8)
    p.add_argument("--input", metavar="INPUT.npz", help="report golden accuracy on this file")
    add_force(p)
    p.set_defaults(func=cmd_export)
