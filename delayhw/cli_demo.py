"""``delayhw demo``: the end-to-end flow on a small built-in network."""

from __future__ import annotations

import argparse

import numpy as np


def cmd_demo(args: argparse.Namespace) -> int:
    from . import golden
    from .cli import claim_output_dir
    from .formats import Inputs, save_model
    from .netgen import example_model, random_spikes

    out = claim_output_dir(args.out, args.force)
    model = example_model()
    model_path = save_model(model, out / "model.npz")
    spikes = random_spikes(np.random.default_rng(args.seed), 4, 20, model.n_inputs, 0.2)
    Inputs(spikes).save(out / "input.npz")
    result = golden.run(model, spikes)
    result.save(out / "golden.npz")
    print(f"model: {model_path} ({model.n_inputs} inputs -> "
          + " -> ".join(f"{l.name}[{l.size} {l.kind}]" for l in model.layers) + ")")
    for b in range(len(spikes)):
        print(f"sample {b}: scores {result.scores[b].tolist()} -> class {result.predictions[b]}, "
              f"hidden spikes {int(result.spikes[0][b].sum())}")
    return 0


def register(sub, add_force) -> None:
    p = sub.add_parser("demo", help="run the whole flow on a small built-in network",
                       description="Run the delayhw flow end to end on a small example.")
    p.add_argument("-o", "--out", default="demo_out", help="output directory (default demo_out)")
    p.add_argument("--seed", type=int, default=0)
    add_force(p)
    p.set_defaults(func=cmd_demo)
