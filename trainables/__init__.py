"""Adapters that let Ray Tune run a user's model: functions, classes, PyTorch.

A function `train(config)` that calls `report(...)` is a trainable; so is a plain class with
`setup(config)` and `step()`, a `ray.tune.Trainable` subclass, a `TorchTrainable` built from
a model factory and data, and a `SklearnTrainable` around any scikit-learn estimator.
The calls a trainable makes (`report`, ...) import Ray Tune and the wrappers import torch or
scikit-learn, so each loads when first named: reading a spec (the `tunefleet` command does it
before Ray starts) imports none of them.
What tunefleet asks of any trainable is written once, in `Wrapper`
(`tunefleet.trainables.contract`).

May import `tunefleet.common` only; never `search`, `cluster` or `experiments`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports
from tunefleet.trainables.contract import TuneAdaptable, Wrapper
from tunefleet.trainables.resolve import TrainableError, check_trainable, import_object

if TYPE_CHECKING:
    from tunefleet.trainables.api import (
        Checkpoint,
        get_checkpoint,
        report,
        trial_cpus,
        trial_gpus,
        trial_id,
    )
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

_API = "tunefleet.trainables.api"
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Checkpoint": _API,
        "get_checkpoint": _API,
        "report": _API,
        "trial_cpus": _API,
        "trial_gpus": _API,
        "trial_id": _API,
        "TorchTrainable": "tunefleet.trainables.pytorch",
        "SklearnTrainable": "tunefleet.trainables.sklearn",
    },
)
