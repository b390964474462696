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

These are Ray Tune's `tune.report`, `tune.get_checkpoint` and `tune.Checkpoint`. In a
data-parallel trial (`resources.workers`, `tunefleet.trainables.data_parallel`) the same calls
run on each worker and go through Ray Train instead; `worker_rank()` and `world_size()` say
which worker this is.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ray
import ray.train
from ray import tune
from ray.tune import Checkpoint

__all__ = [
    "Checkpoint",
    "GangWorker",
    "enter_gang_worker",
    "gang_worker",
    "get_checkpoint",
    "node_id",
    "report",
    "trial_cpus",
    "trial_gpus",
    "trial_id",
    "worker_rank",
    "world_size",
]


@dataclass(frozen=True)
class GangWorker:
    """This process is one worker of a data-parallel trial.

    Attributes:
        rank: Its rank (0 writes the checkpoints).
        size: The number of workers.
        trial_id: The Tune trial the gang trains for.
        cpus: CPUs reserved for this worker.
        gpus: GPUs reserved for this worker.
        start: The checkpoint the gang starts from (the trial's, when Tune restores it).
    """

    rank: int
    size: int
    trial_id: str | None
    cpus: float
    gpus: float
    start: Checkpoint | None = None


_gang_worker: GangWorker | None = None


def enter_gang_worker(worker: GangWorker | None) -> None:
    """Marks this process as a worker of a data-parallel trial (None: no longer)."""
    global _gang_worker
    _gang_worker = worker


def gang_worker() -> GangWorker | None:
    """The data-parallel worker this process is, or None in a one-worker trial."""
    return _gang_worker


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
    if _gang_worker is not None:  # every worker reports each round; rank 0 checkpoints
        ray.train.report({**metrics, "node_id": node_id()}, checkpoint=checkpoint)
        return
    tune.report({**metrics, "node_id": node_id()}, checkpoint=checkpoint)


@functools.cache
def node_id() -> str:
    """The Ray node this process runs on (several nodes may share one IP address)."""
    return ray.get_runtime_context().get_node_id()


def get_checkpoint() -> Checkpoint | None:
    """Returns the checkpoint this trial resumes from (after a failure, or from PBT), or None."""
    if _gang_worker is not None:  # the gang's latest, or the one it started from
        return ray.train.get_checkpoint() or _gang_worker.start
    return tune.get_checkpoint()


def _trial_resource(name: str) -> float:
    try:
        resources = tune.get_context().get_trial_resources().required_resources
    except Exception:  # outside a Tune trial
        return 0.0
    return float(resources.get(name, 0.0))


def trial_cpus() -> int:
    """The CPUs reserved for the running trial, or for this worker of a data-parallel trial
    (at least 1): use it as a thread count."""
    if _gang_worker is not None:
        return max(1, int(_gang_worker.cpus))
    return max(1, int(_trial_resource("CPU")))


def trial_gpus() -> float:
    """The GPUs reserved for the running trial, or for this worker of a data-parallel trial
    (0 when none)."""
    if _gang_worker is not None:
        return _gang_worker.gpus
    return _trial_resource("GPU")


def trial_id() -> str | None:
    """The running trial's id (None outside a trial)."""
    if _gang_worker is not None:
        return _gang_worker.trial_id
    try:
        return tune.get_context().get_trial_id()
    except Exception:  # outside a Tune trial
        return None


def worker_rank() -> int:
    """This worker's rank in a data-parallel trial (0 in a one-worker trial)."""
    return 0 if _gang_worker is None else _gang_worker.rank


def world_size() -> int:
    """The workers of a data-parallel trial (1 in a one-worker trial)."""
    return 1 if _gang_worker is None else _gang_worker.size
