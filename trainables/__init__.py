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

if TYPE_CHECKING:  # the public names (`tunefleet.common.lazy` reads this block)
    from tunefleet.trainables.api import Checkpoint as Checkpoint
    from tunefleet.trainables.api import get_checkpoint as get_checkpoint
    from tunefleet.trainables.api import report as report
    from tunefleet.trainables.api import trial_cpus as trial_cpus
    from tunefleet.trainables.api import trial_gpus as trial_gpus
    from tunefleet.trainables.api import trial_id as trial_id
    from tunefleet.trainables.api import worker_rank as worker_rank
    from tunefleet.trainables.api import world_size as world_size
    from tunefleet.trainables.contract import TuneAdaptable as TuneAdaptable
    from tunefleet.trainables.contract import Wrapper as Wrapper
    from tunefleet.trainables.data_parallel import prepare_model as prepare_model
    from tunefleet.trainables.data_parallel import shard as shard
    from tunefleet.trainables.pytorch import TorchTrainable as TorchTrainable
    from tunefleet.trainables.resolve import TrainableError as TrainableError
    from tunefleet.trainables.resolve import check_trainable as check_trainable
    from tunefleet.trainables.resolve import import_object as import_object
    from tunefleet.trainables.sklearn import SklearnTrainable as SklearnTrainable

__getattr__, __dir__ = lazy_exports(__name__)
