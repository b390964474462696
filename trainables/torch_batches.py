"""What feeds `TorchTrainable`'s loop: its mini-batches, their seeded order (and the random
state a checkpoint keeps), and the precision it computes in.

In-memory tensors are sliced in a seeded order (fast, exact on restore); any other dataset
goes through a seeded `DataLoader`, with `num_workers` processes loading batches and pinned
memory for copies to a GPU. `amp: true` trains in mixed precision: float16 with a loss
scale on a GPU, bfloat16 on the CPU (no scale needed).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

__all__ = ["Batches", "Precision", "rng_state", "seed_everything", "set_rng_state"]


class Batches:
    """Mini-batches: index slicing for in-memory tensors, a seeded DataLoader otherwise.

    Args:
        dataset: The split.
        batch_size: Samples a batch.
        generator: The seeded generator of the batch order.
        num_workers: Processes that load a `DataLoader`'s batches (0: in the trial's own).
        pin_memory: Page-locked batches, for faster copies to a GPU.
    """

    def __init__(
        self,
        dataset: Dataset[Any],
        batch_size: int,
        generator: torch.Generator,
        *,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.generator = generator
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.tensors = dataset.tensors if isinstance(dataset, TensorDataset) else None

    def __call__(self, *, shuffle: bool) -> Iterator[Any]:
        """Yields `(inputs, target)` batches, in a new seeded order when `shuffle`."""
        if self.tensors is None:
            loader = DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                shuffle=shuffle,
                generator=self.generator if shuffle else None,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
            )
            yield from loader
            return
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = tuple(t[idx] for t in self.tensors)
            yield tuple(t.pin_memory() for t in batch) if self.pin_memory else batch


@dataclass(frozen=True)
class Precision:
    """The precision a training step computes in.

    Attributes:
        device_type: `cuda` or `cpu`.
        dtype: The autocast type (float16 on a GPU, bfloat16 on the CPU); None: full
            precision.
        scaler: Scales the loss so that float16 gradients do not underflow (a no-op unless
            float16 on a GPU).
    """

    device_type: str
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    @classmethod
    def of(cls, amp: bool, device: torch.device) -> Precision:
        """Mixed precision on `device` when `amp`, else full precision."""
        if not amp:
            return cls.full(device.type)
        cuda = device.type == "cuda"
        return cls(
            device_type=device.type,
            dtype=torch.float16 if cuda else torch.bfloat16,
            scaler=torch.amp.GradScaler(device.type, enabled=cuda),
        )

    @classmethod
    def full(cls, device_type: str = "cpu") -> Precision:
        """Full precision, no loss scale."""
        return cls(device_type, None, torch.amp.GradScaler(device_type, enabled=False))

    def autocast(self) -> AbstractContextManager[Any]:
        """The forward pass's context: autocast to `dtype`, or nothing."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)


def seed_everything(seed: int) -> torch.Generator:
    """Seeds Python's, numpy's and torch's generators; returns the batch-order generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state the training draws from, for a checkpoint."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "shuffle": generator.get_state(),
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Restores what `rng_state` saved."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["shuffle"])
