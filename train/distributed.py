"""Data-parallel training with torch ``DistributedDataParallel``, detected from torchrun.

``torchrun --nproc-per-node N -m delayhw train ...`` sets ``RANK``/``WORLD_SIZE``/
``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``; :func:`setup` sees them, joins the process
group (``gloo`` on CPU, ``nccl`` on CUDA, one GPU per local rank) and returns the rank and
world size; outside torchrun (or with one process) it changes nothing.

Same model as one process, for the same seed and global batch (``--batch-size`` stays the
global batch): every rank loads the same data and draws the same batch permutation; each
batch is split across ranks (:func:`delayhw.train.loop.batch_indices`); and the gradients
are combined so that they equal the single-process gradient of the mean loss over the
global batch, also when a batch does not split evenly: each rank's gradient (of the mean
over its own ``n_r`` samples) is weighted by ``n_r / n`` and the weighted gradients summed
(a DDP communication hook), where DDP's default would average the ranks' means. Parameters
then stay identical on every rank (same start, same summed gradient, same optimiser), so
validation, best-epoch selection, delay rounding and quantisation agree everywhere; rank 0
alone writes the outputs. The float weights match single-process training within float
tolerance (a sum in another order), the exported integer model exactly (tested).
"""

import atexit
import os
from typing import Callable, Iterable

import torch
import torch.distributed as dist
from torch import nn

Forward = Callable[[torch.Tensor], torch.Tensor]


def world_from_environment(env: dict[str, str] | None = None) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's variables; ``(0, 1, 0)`` outside."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    return int(env.get("RANK", "0")), world, int(env.get("LOCAL_RANK", "0"))


def setup(device: str) -> tuple[int, int, str]:
    """Join torchrun's process group if there is one; returns ``(rank, world_size, device)``,
    the device pinned to this process's GPU (``cuda:LOCAL_RANK``) for CUDA."""
    rank, world, local_rank = world_from_environment()
    if world <= 1:
        return 0, 1, device
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        atexit.register(_teardown)
    return rank, world, device


def _teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_sum(*values: float) -> list[float]:
    """The sums over every rank of ``values`` (epoch totals of loss, correct, samples)."""
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"     # NCCL reduces on the GPU
    summed = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(summed)
    return summed.tolist()


class _Shard:
    """This step's weight of this rank's gradient: local samples / global samples."""

    weight = 1.0


def _weighted_sum_hook(state, bucket: dist.GradBucket):
    # (DDP checks this signature's annotations at run time: they must be objects, not strings)
    grads = bucket.buffer()
    if state.weight == 0.0:
        grads.zero_()               # an empty shard has no gradient (and must not add NaN)
    else:
        grads.mul_(state.weight)
    work = dist.all_reduce(grads, op=dist.ReduceOp.SUM, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


class _TrainingForward(nn.Module):
    """``forward`` (a closure over the network) as a module that owns exactly the trained
    parameters, so DDP synchronises those and nothing else (no unused-parameter search)."""

    def __init__(self, forward: Forward, params: Iterable[nn.Parameter], shard: _Shard):
        super().__init__()
        self.trained = nn.ParameterList(params)
        self._forward = forward
        self._shard = shard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = torch.tensor([float(x.shape[0])], device=x.device)
        total = n.clone()
        dist.all_reduce(total)
        self._shard.weight = float(n) / float(total)
        return self._forward(x)


def data_parallel(forward: Forward, params: Iterable[nn.Parameter]) -> Forward:
    """``forward`` for training steps under DDP: gradients of ``params`` (the optimisers'
    parameters) become the global-batch gradient on every rank (module docstring)."""
    shard = _Shard()
    params = [p for p in params if p.requires_grad]
    device = params[0].device
    module = _TrainingForward(forward, params, shard)
    ddp = nn.parallel.DistributedDataParallel(
        module, device_ids=[device] if device.type == "cuda" else None)
    ddp.register_comm_hook(shard, _weighted_sum_hook)
    return ddp
