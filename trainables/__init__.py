"""Adapters that let Ray Tune run a user's model: functions, classes, PyTorch.

A function `train(config)` that calls `report(...)` is a trainable; so is a
`ray.tune.Trainable` subclass, and so is a `TorchTrainable` built from a model factory and
data. `tunefleet.trainables.pytorch` imports torch, so it loads only when named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunefleet.trainables.api import (
    Checkpoint,
    get_checkpoint,
    report,
    trial_cpus,
    trial_gpus,
    trial_id,
)
from tunefleet.trainables.resolve import (
    TrainableError,
    TuneAdaptable,
    check_trainable,
    import_object,
)

if TYPE_CHECKING:
    from tunefleet.trainables.pytorch import TorchTrainable

__all__ = [
    "Checkpoint",
    "TorchTrainable",
    "TrainableError",
    "TuneAdaptable",
    "check_trainable",
    "get_checkpoint",
    "import_object",
    "report",
    "trial_cpus",
    "trial_gpus",
    "trial_id",
]


def __getattr__(name: str) -> Any:
    if name == "TorchTrainable":
        from tunefleet.trainables.pytorch import TorchTrainable

        return TorchTrainable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
