"""Several processes training one model (PyTorch's `torchrun` + DistributedDataParallel).

torchrun starts one process per GPU and sets RANK, LOCAL_RANK and WORLD_SIZE; `start(device)`
joins the process group (NCCL on CUDA, gloo on a CPU). Everything here is a no-op for a single
process, so the engine calls it unconditionally and a plain `python` run is unchanged bit for bit.
"""
from __future__ import annotations

import contextlib
import os

import torch
from torch import Tensor, nn


def world_size() -> int:
    """How many processes train together: the process group's size, 1 alone."""
    return torch.distributed.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank among several (torchrun sets RANK); 0 when alone."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    """Whether this process trains together with others (the process group is up)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def start(device: torch.device) -> None:
    """Join torchrun's process group when there are several processes; idempotent."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not active():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend, device_id=device if device.type == "cuda" else None)


def stop(wait: bool = True) -> None:
    """Leave the process group; with `wait`, first wait for every rank (rank 0 may still be writing
    outputs). A rank that failed must not wait: the others may be blocked in a collective, and
    torchrun ends them all once this one exits."""
    if active():
        if wait:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model as the training step calls it: itself alone, DistributedDataParallel with others
    (rank 0's weights broadcast to all; BatchNorm synchronised across GPUs on CUDA)."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def no_sync(model: nn.Module, last: bool):
    """DDP's `no_sync()` for every micro-batch but the last of an accumulated step: gradients are
    exchanged once per optimiser step, not once per micro-batch."""
    if last or not hasattr(model, "no_sync"):
        return contextlib.nullcontext()
    return model.no_sync()


def shard(batch: Tensor) -> Tensor:
    """This rank's part of a global batch of indices: contiguous, sizes differing by at most one."""
    ranks = world_size()
    return batch.tensor_split(ranks)[rank()] if ranks > 1 else batch


def sum_all(value: Tensor) -> Tensor:
    """The sum of `value` over every rank (a copy; in place would change the caller's tensor)."""
    if not active():
        return value
    out = value.clone()
    torch.distributed.all_reduce(out)
    return out


def agreed(value: float) -> float:
    """Rank 0's `value` on every rank: decisions (the best epoch) are taken once, collectively."""
    if not active():
        return value
    out = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    torch.distributed.broadcast(out, 0)
    return float(out.item())


def count(flag: bool) -> int:
    """On how many ranks `flag` holds (1 or 0 alone)."""
    if not active():
        return int(flag)
    out = torch.tensor([int(flag)], device=_collective_device())
    torch.distributed.all_reduce(out)
    return int(out.item())


def _collective_device() -> torch.device:
    """Where small tensors for a collective live: NCCL exchanges CUDA tensors only."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def rank_seed(seed: int) -> int:
    """A seed of this rank's own: augmentation draws differ between ranks (the same seed on every
    rank would give every shard of a batch the same crops); rank 0's equals `seed`."""
    return seed + 100_003 * rank()
