"""Adapters that let Ray Tune run a user's model: functions, classes, PyTorch.

A function `train(config)` that calls `report(...)` is a trainable; so is a plain class with
`setup(config)` and `step()`, a `ray.tune.Trainable` subclass, a `TorchTrainable` built from
a model factory and data, and a `SklearnTrainable` around any scikit-learn estimator.
The wrappers import torch or scikit-learn, so they load only when named. What tunefleet asks
of any of them is written once, in `Wrapper` (`tunefleet.trainables.contract`).

May import `tunefleet.common` only; never `search`, `cluster` or `experiments`.
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
from tunefleet.trainables.contract import TuneAdaptable, Wrapper
from tunefleet.trainables.resolve import TrainableError, check_trainable, import_object

if TYPE_CHECKING:
    from tunefleet.trainables.pytorch import TorchTrainable
    from tunefleet.trainables.sklearn import SklearnTrainable

__all__ = [
    "Checkpoint",
    "SklearnTrainable",
    "TorchTrainable",
    "TrainableError",
    "TuneAdaptable",
    "Wrapper",
    "check_trainable",
    "get_checkpoint",
    "import_object",
    "report",
    "trial_cpus",
    "trial_gpus",
    "trial_id",
]


def __getattr__(name: str) -> Any:
    # The wrappers import torch / scikit-learn: load them only when named.
    if name == "TorchTrainable":
        from tunefleet.trainables.pytorch import TorchTrainable  # heavy: loaded when named

        return TorchTrainable
    if name == "SklearnTrainable":
        from tunefleet.trainables.sklearn import SklearnTrainable  # heavy: loaded when named

        return SklearnTrainable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
