"""Training defaults derived from a data set's shape and size (docs/train.md, "Defaults").

:func:`derive_defaults` is a pure function of what a user's file says about itself: the
number of training samples, steps per sample, input channels and classes. Each value comes
with the reason the log prints. The rule starts from the recipe of the DCLS delay paper
(Hammouamri et al., ICLR 2024: 64 hidden LIF units, decay 0.9, one learnable delay per
synapse up to 25 steps, small batches, up to 150 epochs) and scales it to the data:

- ``hidden`` = ``max(128, 4 * n_classes)`` rounded up to a power of two, at most 256: twice
  the recipe's 64 units (on a few dozen to a few hundred samples the wider layer scored
  higher and spread less over seeds at the same run time; docs/train.md, "Fourth pass"),
  and at least 4 per class.
- ``d_max`` = ``steps / 2`` rounded half up, between 1 and ``min(25, steps - 1)``: a delay
  can realign events up to half the sequence apart, capped at the recipe's 25 (a layer's
  cost and the hardware's delay memory grow with ``d_max``).
- ``beta`` = ``beta_out`` = ``1 - 1 / tau`` with ``tau = clamp(steps / 10, 2, 10)`` steps: a
  membrane time constant of a tenth of the sequence, the recipe's 0.9 from 100 steps up.
- ``batch_size`` = the largest power of two ``<= n_train / 8``, between 8 and 64: at least
  about 8 optimiser steps per epoch.
- ``epochs`` = ``ceil(2000 / batches per epoch)`` (about 2000 optimiser steps), at most 150
  and at most ``160000 / (batches per epoch * steps)`` (about 160 thousand batch-steps: at
  these sizes a step's cost is per-operation overhead, nearly independent of the batch, and
  this keeps a default run within about 3 minutes on one CPU core), at least 30.
"""

from __future__ import annotations

import math

__all__ = ["derive_defaults", "OPTIMIZER_STEPS", "BATCH_STEP_BUDGET"]

#: Optimiser steps the epoch rule aims for.
OPTIMIZER_STEPS = 2000
#: Upper bound on ``batches per epoch * steps * epochs`` (keeps a default run within about 3
#: minutes on one CPU core: 13 batches x 146 steps x 89 epochs took 213 s, QAT included, with
#: load average 9 on 2 cores).
BATCH_STEP_BUDGET = 160_000


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def derive_defaults(n_train: int, steps: int, n_inputs: int,
                    n_classes: int) -> dict[str, tuple[object, str]]:
    """``{option: (value, reason)}`` for ``hidden``, ``d_max``, ``beta``, ``beta_out``,
    ``batch_size`` and ``epochs`` of a data set with ``n_train`` training samples of
    ``steps`` steps, ``n_inputs`` channels and ``n_classes`` classes (module docstring)."""
    if min(n_train, steps, n_inputs, n_classes) < 1:
        raise ValueError("n_train, steps, n_inputs and n_classes must be >= 1")
    width = min(256, 2 ** math.ceil(math.log2(max(128, 4 * n_classes))))
    hidden = ((width,), f"max(128, 4 x {n_classes} classes) -> power of two, <= 256")
    d_hi = max(1, min(25, steps - 1))
    d_max = (int(_clamp(math.floor(steps / 2 + 0.5), 1, d_hi)),
             f"half of {steps} steps, in 1..{d_hi}")
    tau = _clamp(steps / 10, 2.0, 10.0)
    beta = round(1.0 - 1.0 / tau, 4)
    why_beta = f"1 - 1/tau, tau = {steps} steps / 10 in 2..10 = {tau:g}"
    batch = int(_clamp(2 ** math.floor(math.log2(max(n_train / 8, 1))), 8, 64))
    batches = math.ceil(n_train / batch)
    by_steps = math.ceil(OPTIMIZER_STEPS / batches)
    by_budget = BATCH_STEP_BUDGET // (batches * steps)
    epochs = int(_clamp(min(by_steps, by_budget, 150), 30, 150))
    return {
        "hidden": hidden,
        "d_max": d_max,
        "beta": (beta, why_beta),
        "beta_out": (beta, "same as beta"),
        "batch_size": (batch, f"power of two <= {n_train} train samples / 8, in 8..64"),
        "epochs": (epochs, f"min({OPTIMIZER_STEPS} steps / {batches} batches = {by_steps}, "
                           f"{BATCH_STEP_BUDGET} / ({batches} x {steps} steps) = {by_budget}, "
                           f"150), >= 30"),
    }
