"""A PyTorch trainable that fails once mid-run, to test restoring from checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from tunefleet.trainables import TorchTrainable
from tunefleet.trainables.examples import digits


class _FailOnce(nn.Module):
    """Runs `inner`, but raises at forward call `fail_at` if `marker` does not exist yet."""

    def __init__(self, inner: nn.Module, marker: str, fail_at: int) -> None:
        super().__init__()
        self.inner, self.marker, self.fail_at, self.calls = inner, marker, fail_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.marker and self.calls == self.fail_at and not Path(self.marker).exists():
            Path(self.marker).touch()
            raise RuntimeError("injected failure mid-epoch")
        return self.inner(x)


def flaky_mlp(config: dict[str, Any]) -> nn.Module:
    return _FailOnce(
        digits.mlp(config), config.get("fail_marker", ""), int(config.get("fail_at", 0))
    )


flaky_digits = TorchTrainable(
    model=flaky_mlp, data=digits.data, monitor="val_accuracy", monitor_mode="max"
)
