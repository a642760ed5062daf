"""Training: float training with learnable delays, then quantisation-aware fine-tuning.

- Float stage: one Adam for the weights at ``lr`` (one-cycle or cosine schedule), a separate
  Adam for the delays at ``lr_delay`` (in bins, cosine-annealed); delays are clamped to their range after every step and the
  delay-kernel width follows its schedule (:mod:`.kernels`), set once per epoch.
- Then :meth:`DelayNet.round_delays_` rounds delays (half up) and freezes them.
- QAT stage: the forward pass is :func:`.quant.int_forward` (exact integers, straight-through
  gradients), Adam at ``lr_qat`` on the weights. With ``select="best"`` the epoch with the
  best validation accuracy (epoch 0 = plain post-training quantisation) is kept, with
  ``last`` the last one. The test set is never seen here.

Every epoch appends a record ``{phase, epoch, loss, train_acc, val_acc, seconds, ...}`` to
the history and, unless quiet, prints one line; a rich progress bar tracks the batches.
"""

from __future__ import annotations

import copy
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .data import SpikeData, Splits
from .layers import DelayNet
from .quant import QuantSpec, int_forward

__all__ = ["FitConfig", "Reporter", "adam", "fit_float", "fit_qat", "train_epoch", "accuracy",
           "float_logits", "int_logits", "batch_indices", "float_optimizers"]

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class FitConfig:
    """How to fit. ``lr_schedule`` is the weights' schedule over the float epochs
    (``onecycle``: warm up to ``lr`` over the first 30% of steps, then anneal, per batch;
    ``cosine``: from ``lr`` down, per epoch); the delays always follow their own Adam at
    ``lr_delay``, cosine-annealed per epoch. ``select`` is ``best`` (keep the epoch with the
    best validation accuracy) or ``last``; ``best`` needs a validation set. ``rank`` /
    ``world_size`` shard every batch's samples (for a data-parallel wrapper; 0 / 1 here).
    ``label_smoothing`` is the cross-entropy's (``torch.nn.functional.cross_entropy``): the
    target puts ``1 - label_smoothing`` on the class plus an even share of
    ``label_smoothing`` on every class; it applies to float training and QAT."""

    epochs: int = 30
    qat_epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    lr_delay: float = 0.2
    lr_qat: float = 5e-4
    lr_schedule: str = "cosine"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    select: str = "best"
    seed: int = 0
    device: str = "cpu"
    rank: int = 0
    world_size: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


class Reporter:
    """Progress bar over batches and one line per epoch (rich); silent when ``quiet``."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._progress = None
        self._task = None

    @contextmanager
    def phase(self, name: str, total_batches: int) -> Iterator["Reporter"]:
        if self.quiet:
            yield self
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TimeRemainingColumn(), transient=True) as progress:
            self._progress = progress
            self._task = progress.add_task(name, total=total_batches)
            try:
                yield self
            finally:
                self._progress = self._task = None

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def note(self, line: str) -> None:
        """Print one line (above the progress bar while one is shown)."""
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.console.print(line, highlight=False)
        else:
            from rich.console import Console
            Console().print(line, highlight=False)

    def epoch(self, record: dict) -> None:
        val = record["val_acc"]
        val = "     -" if math.isnan(val) else f"{100 * val:6.2f}%"
        self.note(f"{record['phase']:>5} epoch {record['epoch']:>3}  loss {record['loss']:.4f}  "
                  f"train {100 * record['train_acc']:6.2f}%  val {val}"
                  f"  ({record['seconds']:.1f} s)")


def batch_indices(n: int, batch_size: int, rng: np.random.Generator | None,
                  rank: int = 0, world_size: int = 1) -> Iterator[np.ndarray]:
    """Sample indices of each batch: a seeded permutation (``rng``; ``None``: in order) cut
    into ``batch_size`` slices; with ``world_size > 1`` each slice is sharded and this
    returns the ``rank``-th share (every rank draws the same permutation from the same seed)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for s in range(0, n, batch_size):
        yield np.sort(order[s:s + batch_size][rank::world_size])


def _batches(data: SpikeData, batch_size: int, rng: np.random.Generator | None,
             device: str, rank: int = 0,
             world_size: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for idx in batch_indices(len(data), batch_size, rng, rank, world_size):
        x = torch.from_numpy(data.spikes[idx]).to(device=device, dtype=torch.float32)
        yield x, torch.from_numpy(data.labels[idx]).to(device)


def float_logits(net: DelayNet) -> Forward:
    return lambda x: net(x)[0]


def int_logits(net: DelayNet, spec: QuantSpec) -> Forward:
    return lambda x: int_forward(net, x, spec).logits


@torch.no_grad()
def accuracy(forward: Forward, data: SpikeData, batch_size: int = 256,
             device: str = "cpu") -> float:
    """Fraction of ``data`` whose argmax logit (ties to the lowest index) is the label."""
    if len(data) == 0:
        return float("nan")
    correct = 0
    for x, y in _batches(data, batch_size, None, device):
        correct += int((forward(x).argmax(dim=1) == y).sum())
    return correct / len(data)


def train_epoch(forward: Forward, data: SpikeData, opts: list[torch.optim.Optimizer],
                cfg: FitConfig, rng: np.random.Generator, after_step: Callable[[], None],
                reporter: Reporter) -> tuple[float, float]:
    """One pass over ``data`` in shuffled batches, one step of every optimiser in ``opts``
    per batch, then ``after_step()`` (delay clamping, per-batch schedules); returns (mean
    loss, accuracy)."""
    total, correct, n = 0.0, 0, 0
    for x, y in _batches(data, cfg.batch_size, rng, cfg.device, cfg.rank, cfg.world_size):
        logits = forward(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in opts:
            opt.step()
        after_step()
        total += float(loss.detach()) * len(y)
        correct += int((logits.detach().argmax(1) == y).sum())
        n += len(y)
        reporter.advance()
    if cfg.world_size > 1:                  # every rank's share of the epoch
        from .distributed import all_sum
        total, correct, n = all_sum(total, correct, n)
    return total / max(n, 1), correct / max(n, 1)


def adam(params, **options) -> torch.optim.Adam:
    """The trainer's Adam: torch's fused implementation (one kernel for all parameters; on
    CPU 2x faster per step than the per-parameter loop for the small networks here)."""
    return torch.optim.Adam(params, fused=True, **options)


def float_optimizers(net: DelayNet, cfg: FitConfig, n_batches: int):
    """The float stage's optimisers and schedules (:class:`FitConfig`): returns
    ``(optimisers, per_batch_schedules, per_epoch_schedules)``."""
    weights = adam(net.weight_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    opts, per_batch, per_epoch = [weights], [], []
    epochs = max(cfg.epochs, 1)
    if cfg.lr_schedule == "onecycle":
        per_batch.append(torch.optim.lr_scheduler.OneCycleLR(
            weights, max_lr=cfg.lr, total_steps=epochs * max(n_batches, 1), pct_start=0.3))
    elif cfg.lr_schedule == "cosine":
        per_epoch.append(torch.optim.lr_scheduler.CosineAnnealingLR(weights, T_max=epochs))
    else:
        raise ValueError(f"lr_schedule must be 'onecycle' or 'cosine', got {cfg.lr_schedule!r}")
    if net.delay_parameters():
        delays = adam(net.delay_parameters(), lr=cfg.lr_delay)
        opts.append(delays)
        per_epoch.append(torch.optim.lr_scheduler.CosineAnnealingLR(delays, T_max=epochs))
    return opts, per_batch, per_epoch


def _training_forward(forward: Forward, opts: list[torch.optim.Optimizer],
                      cfg: FitConfig) -> Forward:
    """``forward`` for training steps; with ``world_size > 1`` under DistributedDataParallel
    over the optimisers' parameters (:mod:`.distributed`)."""
    if cfg.world_size == 1:
        return forward
    from .distributed import data_parallel
    return data_parallel(forward, [p for o in opts for g in o.param_groups for p in g["params"]])


def _check_select(cfg: FitConfig, splits: Splits) -> bool:
    """Whether to keep the best validation epoch (``select == "best"``)."""
    if cfg.select not in ("best", "last"):
        raise ValueError(f"select must be 'best' or 'last', got {cfg.select!r}")
    if cfg.select == "best" and len(splits.val) == 0:
        raise ValueError("select 'best' needs a validation set (val_fraction > 0)")
    return cfg.select == "best"


def fit_float(net: DelayNet, splits: Splits, cfg: FitConfig, reporter: Reporter) -> list[dict]:
    """Float training with learnable delays (see module docstring). With ``select ==
    "best"`` the weights and delays of the best validation epoch among those that run the
    hardware's integer delays (straight-through or frozen) are kept. Returns the history."""
    select_best = _check_select(cfg, splits)
    n_batches = math.ceil(len(splits.train) / cfg.batch_size)
    opts, per_batch, per_epoch = float_optimizers(net, cfg, n_batches)

    def after_step() -> None:
        net.clamp_delays_()
        for sched in per_batch:
            sched.step()

    rng = np.random.default_rng(cfg.seed)
    history = []
    best_acc, best_state, best_epoch = -1.0, None, None
    forward = float_logits(net)
    train_forward = _training_forward(forward, opts, cfg)
    with reporter.phase("float", cfg.epochs * n_batches):
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            net.set_progress((epoch - 1) / max(cfg.epochs - 1, 1))
            reporter.describe(f"float {epoch}/{cfg.epochs}")
            net.train()
            loss, train_acc = train_epoch(train_forward, splits.train, opts, cfg, rng,
                                          after_step, reporter)
            for sched in per_epoch:
                sched.step()
            net.eval()
            val_acc = accuracy(forward, splits.val, device=cfg.device)
            integer_delays = net.kernel.hard or net.kernel.straight_through
            record = {"phase": "float", "epoch": epoch, "loss": loss, "train_acc": train_acc,
                      "val_acc": val_acc, "kernel_width": net.kernel.width,
                      "integer_delays": integer_delays,
                      "lr": opts[0].param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
            history.append(record)
            reporter.epoch(record)
            if select_best and integer_delays and val_acc > best_acc:
                best_acc, best_state, best_epoch = val_acc, copy.deepcopy(net.state_dict()), epoch
    if best_state is not None:
        net.load_state_dict(best_state)
        for record in history:
            record["selected"] = record["epoch"] == best_epoch
    return history


def fit_qat(net: DelayNet, spec: QuantSpec, splits: Splits, cfg: FitConfig,
            reporter: Reporter) -> list[dict]:
    """Quantisation-aware fine-tuning of the weights (delays must be rounded already). With
    ``select == "best"`` keeps the weights of the best validation epoch (epoch 0, plain
    post-training quantisation, included), with ``last`` those of the last epoch. Returns
    the history (epoch 0 = before)."""
    select_best = _check_select(cfg, splits)
    forward = int_logits(net, spec)
    t0 = time.perf_counter()
    best_acc = accuracy(forward, splits.val, device=cfg.device)
    best_state = copy.deepcopy(net.state_dict())
    history = [{"phase": "qat", "epoch": 0, "loss": float("nan"),
                "train_acc": accuracy(forward, splits.train, device=cfg.device),
                "val_acc": best_acc, "seconds": time.perf_counter() - t0}]
    reporter.epoch(history[0])
    if cfg.qat_epochs <= 0:
        return history
    opt = adam(net.weight_parameters(), lr=cfg.lr_qat)
    train_forward = _training_forward(forward, [opt], cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    n_batches = math.ceil(len(splits.train) / cfg.batch_size)
    with reporter.phase("qat", cfg.qat_epochs * n_batches):
        for epoch in range(1, cfg.qat_epochs + 1):
            t0 = time.perf_counter()
            reporter.describe(f"qat {epoch}/{cfg.qat_epochs}")
            loss, train_acc = train_epoch(train_forward, splits.train, [opt], cfg, rng,
                                          lambda: None, reporter)
            val_acc = accuracy(forward, splits.val, device=cfg.device)
            record = {"phase": "qat", "epoch": epoch, "loss": loss, "train_acc": train_acc,
                      "val_acc": val_acc, "seconds": time.perf_counter() - t0}
            history.append(record)
            reporter.epoch(record)
            if select_best and val_acc > best_acc:
                best_acc, best_state = val_acc, copy.deepcopy(net.state_dict())
    if select_best:
        net.load_state_dict(best_state)
    return history
