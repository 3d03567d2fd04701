"""torchrun support: the process group, this process's rank and device, one shard per rank.

Under ``torchrun --nproc_per_node N`` (env WORLD_SIZE > 1) each process trains on its share of
every global batch and DDP averages the gradients; gloo on CPU (so it is testable without a
GPU), nccl on CUDA. Under ``torchrun --nproc_per_node 1`` the process group and DDP are set
up too (a one-GPU check of the multi-GPU path); without torchrun everything here is a no-op.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from torch import nn

from robopolicy.errors import RobopolicyError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the run: rank, world size, its device and whether it
    is in a process group (launched by torchrun)."""

    rank: int = 0
    world: int = 1
    device: str = "cpu"
    group: bool = False

    @property
    def main(self) -> bool:
        """The process that logs, checkpoints and evaluates."""
        return self.rank == 0

    def local_batch(self, batch_size: int) -> int:
        if batch_size % self.world:
            raise RobopolicyError(f"trainer.batch_size {batch_size} must be divisible by the "
                                  f"number of processes ({self.world})")
        return batch_size // self.world

    def any_true(self, flag: bool) -> bool:
        """Whether `flag` holds on any rank (so every rank stops together)."""
        if not self.group:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        torch.distributed.all_reduce(t)
        return bool(t.item() > 0)


def init_distributed(device: str) -> Dist:
    """Join torchrun's process group when launched by it; `device` "cuda" becomes this rank's GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1 and "TORCHELASTIC_RUN_ID" not in os.environ:  # not launched by torchrun
        return Dist(0, 1, device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend)
        log.info("process group: %s, rank %d of %d", backend, rank, world)
    return Dist(rank, world, device, group=True)


def close_distributed(dist: Dist) -> None:
    if dist.group and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


class LossModule(nn.Module):
    """`policy.compute_loss` as a forward pass, which is what DDP synchronizes; it returns the
    whole dict (``loss`` and any terms logged beside it)."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.policy.compute_loss(batch)


def wrap_loss(policy: nn.Module, dist: Dist) -> nn.Module:
    """The module whose forward gives the loss: DDP-wrapped in a process group."""
    module = LossModule(policy)
    if not dist.group:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(dist.device).index] if dist.device.startswith("cuda") else None
    return DistributedDataParallel(module, device_ids=ids)
