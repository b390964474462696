"""The few calls a trainable needs, so that user code never imports Ray itself.

Inside a function trainable::

    from tunefleet.trainables import report, get_checkpoint, trial_cpus

    def train(config):
        start = 0
        if (ckpt := get_checkpoint()) is not None:
            with ckpt.as_directory() as d:
                start = int(Path(d, "epoch").read_text()) + 1
        for epoch in range(start, config["epochs"]):
            ...
            with tempfile.TemporaryDirectory() as d:
                Path(d, "epoch").write_text(str(epoch))
                report({"loss": loss}, checkpoint=d)

These are Ray Tune 2.60's `tune.report`, `tune.get_checkpoint` and `tune.Checkpoint`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import ray
from ray import tune
from ray.tune import Checkpoint

__all__ = [
    "Checkpoint",
    "get_checkpoint",
    "node_id",
    "report",
    "trial_cpus",
    "trial_gpus",
    "trial_id",
]


def report(
    metrics: Mapping[str, Any], *, checkpoint: str | os.PathLike[str] | Checkpoint | None = None
) -> None:
    """Reports one result of the running trial, optionally with a checkpoint.

    The result also carries `node_id`, the Ray node the trial ran on.

    Args:
        metrics: Metric names to values (numbers, or nested mappings of numbers).
        checkpoint: A directory holding the trial's state (Ray copies it to the experiment's
            storage before this returns, so a temporary directory is fine), or a `Checkpoint`.
    """
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint.from_directory(os.fspath(checkpoint))
    tune.report({**metrics, "node_id": node_id()}, checkpoint=checkpoint)


@functools.cache
def node_id() -> str:
    """The Ray node this process runs on (several nodes may share one IP address)."""
    return ray.get_runtime_context().get_node_id()


def get_checkpoint() -> Checkpoint | None:
    """Returns the checkpoint this trial resumes from (after a failure, or from PBT), or None."""
    return tune.get_checkpoint()


def _trial_resource(name: str) -> float:
    try:
        resources = tune.get_context().get_trial_resources().required_resources
    except Exception:  # outside a Tune trial
        return 0.0
    return float(resources.get(name, 0.0))


def trial_cpus() -> int:
    """The CPUs reserved for the running trial (at least 1): use it as a thread count."""
    return max(1, int(_trial_resource("CPU")))


def trial_gpus() -> float:
    """The GPUs reserved for the running trial (0 when none)."""
    return _trial_resource("GPU")


def trial_id() -> str | None:
    """The running trial's id (None outside a trial)."""
    try:
        return tune.get_context().get_trial_id()
    except Exception:  # outside a Tune trial
        return None
