"""Trials bigger than one worker: each trial trains on a gang of Ray Train workers (DDP).

With `resources: {workers: N, cpu: C, gpu: G}` a trial is a Ray Train `TorchTrainer` of N
workers of C CPUs and G GPUs each (gloo on CPUs, nccl on GPUs), started from inside the Tune
trial, as Ray Train V2 (Ray 2.55 to 2.60) documents. The Tune trial itself only waits on its
gang: it reserves no CPU (Tune needs some resource in a request: one byte of memory).

The trainable runs on every worker. `report`, `get_checkpoint`, `trial_cpus` and
`trial_gpus` (`tunefleet.trainables.api`) work there as in a one-worker trial; every worker
reports each round, rank 0 with the checkpoint; `worker_rank()`, `world_size()`, `shard` and
`prepare_model` are what a function needs to train data-parallel. `TorchTrainable` does all
of it itself.

Each round of reports reaches Tune through the trial: the metrics of rank 0, each worker's
`node_id` and its own `worker` mapping as `workers/<rank>/...`, and rank 0's checkpoint, which
Tune copies into the trial's folder like any other. Tune therefore holds every checkpoint: a
retried trial, a resumed experiment and a PBT exploit start the gang from it (every worker's
`get_checkpoint()` returns it until the gang reports a newer one; Ray Train V2 deprecates
`resume_from_checkpoint`), and every worker loads it. Ray Train's controller hands over one
round at a time and waits until Tune has taken it (its checkpoint copied) before it goes on
to the next; the workers may train a round or two ahead of it, so a trial ASHA stops may
have trained a little past its rung, and a retried one goes on from the newest checkpoint
Tune had. (`ray.tune.integration.ray_train.TuneReportCallback` passes only metrics and the
checkpoint's path: Tune would hold no checkpoint to retry from or to exploit.)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
import ray.train
from ray import tune
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.util import remove_placement_group

from tunefleet.common import ray_compat
from tunefleet.trainables.api import GangWorker, enter_gang_worker, gang_worker, node_id

__all__ = [
    "DRIVER_RESOURCES",
    "Gang",
    "from_rank_zero",
    "gang_trainable",
    "mean_over_workers",
    "merged_metrics",
    "prepare_model",
    "run_gang",
    "shard",
    "weights_checksum",
    "worker_device",
]

#: What the Tune trial of a data-parallel trial reserves for itself: it only waits.
DRIVER_RESOURCES: dict[str, float] = {"cpu": 0, "memory": 1}

_POLL_S = 0.5


@dataclass(frozen=True)
class Gang:
    """The workers of one data-parallel trial.

    Attributes:
        workers: How many.
        cpu: CPUs per worker.
        gpu: GPUs per worker.
    """

    workers: int
    cpu: float = 1.0
    gpu: float = 0.0

    def worker_resources(self) -> dict[str, float]:
        """One worker's Ray resources."""
        resources = {"CPU": self.cpu}
        if self.gpu > 0:
            resources["GPU"] = self.gpu
        return resources


def gang_trainable(per_worker: Callable[[dict[str, Any]], Any], gang: Gang) -> Any:
    """The Tune function trainable whose trials run `per_worker(config)` on `gang`."""

    def gang_trial(config: dict[str, Any]) -> None:
        run_gang(per_worker, config, gang, report=_report_to_tune, start=tune.get_checkpoint())

    gang_trial.__name__ = gang_trial.__qualname__ = getattr(per_worker, "__name__", "gang")
    return ray_compat.with_trial_mixins(gang_trial, _ReleaseOnStop)


class _ReleaseOnStop:
    """Mixed into the trial's class: when Tune stops the trial early (ASHA, a budget), the
    trial's process ends and its gang's controller with it, before Ray Train could release
    the workers' placement group; this releases it first."""

    def cleanup(self) -> None:
        try:
            super().cleanup()  # type: ignore[misc]
        finally:
            for mailbox in list(_running):
                _release(mailbox)


# The mailboxes of the gangs this process runs (a trial's process runs one at a time).
_running: list[Any] = []


def _release(mailbox: Any) -> None:
    """Removes the placement group of the gang `mailbox` serves, if it has one left."""
    with contextlib.suppress(Exception):  # gone already: the gang ended, or Ray is stopping
        group = ray.get(mailbox.placement_group.remote(), timeout=10)
        if group is not None:
            remove_placement_group(group)


def run_gang(
    per_worker: Callable[[dict[str, Any]], Any],
    config: dict[str, Any],
    gang: Gang,
    *,
    report: Callable[[dict[str, Any], Any], None],
    start: Any = None,
    storage: tuple[Any, str] | None = None,
) -> None:
    """Runs `per_worker(config)` on every worker of a `TorchTrainer` and hands each round of
    reports to `report(metrics, checkpoint)` before the gang goes on.

    Args:
        per_worker: The training loop of one worker.
        config: The trial's config.
        gang: The workers.
        report: Takes the round's merged metrics (see the module) and rank 0's checkpoint.
        start: A checkpoint every worker starts from (`get_checkpoint()` returns it).
        storage: `(filesystem, folder)` where the workers' checkpoints go before `report`
            takes them; default: the running Tune trial's folder.

    Raises:
        Exception: What the gang's training raised (Ray Train's `TrainingFailedError`).
    """
    from ray.train.torch import TorchTrainer  # torch: only for a data-parallel run

    problem = ray_compat.train_v2_problem()
    if problem:
        raise RuntimeError(problem)
    filesystem, folder = storage or ray_compat.trial_storage()
    name = f"gang-{uuid.uuid4().hex[:8]}"
    mailbox = _Mailbox.options(num_cpus=0).remote()  # type: ignore[attr-defined]
    trial = tune.get_context().get_trial_id() if storage is None else None
    trainer = TorchTrainer(
        _worker_main,
        train_loop_config={
            "per_worker": per_worker,
            "config": config,
            "gang": gang,
            "trial": trial,
            "start": start,
            "mailbox": mailbox,
        },
        scaling_config=ScalingConfig(
            num_workers=gang.workers,
            use_gpu=gang.gpu > 0,
            resources_per_worker=gang.worker_resources(),
        ),
        run_config=RunConfig(
            name=name,
            storage_path=folder,
            storage_filesystem=filesystem,
            callbacks=[_HandOver(mailbox)],
            # Tune keeps the checkpoints; Ray Train keeps the one being handed over.
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=0),  # Tune retries the trial
        ),
    )
    failure: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=fit, name="tunefleet-gang", daemon=True)
    _running.append(mailbox)
    thread.start()
    try:
        while True:
            handed = ray.get(mailbox.take.remote(_POLL_S))
            if handed is not None:
                report(*handed)
                ray.get(mailbox.taken.remote())
            elif not thread.is_alive():
                break
        thread.join()
    finally:
        _running.remove(mailbox)
        with contextlib.suppress(OSError):  # Ray Train's copies: Tune holds its own
            filesystem.delete_dir(f"{folder}/{name}")
    if failure:
        raise failure[0]


def _report_to_tune(metrics: dict[str, Any], checkpoint: Any) -> None:
    tune.report(metrics, checkpoint=checkpoint)


# Ray Train's callback class (absent with Train V2 turned off: `run_gang` then refuses).
_UserCallback: Any = getattr(ray.train, "UserCallback", object)


class _HandOver(_UserCallback):
    """Runs in Ray Train's controller: hands each round of reports to the trial and waits
    until the trial has passed it on (Tune has copied the checkpoint and answered)."""

    def __init__(self, mailbox: Any) -> None:
        self.mailbox = mailbox

    def after_report(
        self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any
    ) -> None:
        ray.get(self.mailbox.hand.remote((merged_metrics(metrics), checkpoint)))


@ray.remote
class _Mailbox:
    """One round of reports at a time, from the gang's controller to the trial."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        self.done = asyncio.Event()
        self.group: Any = None

    async def placed(self, group: Any) -> None:
        """The gang's workers run in `group` (rank 0 says so when it starts)."""
        self.group = group

    async def placement_group(self) -> Any:
        """The gang's placement group, once rank 0 has started; else None."""
        return self.group

    async def hand(self, item: Any) -> None:
        """Leaves a round and returns once the trial has passed it on."""
        self.done.clear()
        await self.items.put(item)
        await self.done.wait()

    async def take(self, timeout: float) -> Any:
        """The next round, or None when none comes within `timeout` seconds."""
        try:
            return await asyncio.wait_for(self.items.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def taken(self) -> None:
        """The round taken last has been passed on."""
        self.done.set()


def merged_metrics(per_rank: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One result from a round of the workers' reports: rank 0's metrics, and each worker's
    `node_id` and `worker` mapping under `workers/<rank>`."""
    merged = {k: v for k, v in per_rank[0].items() if k != "worker"}
    merged["workers"] = {
        str(rank): {"node_id": m.get("node_id"), **dict(m.get("worker") or {})}
        for rank, m in enumerate(per_rank)
    }
    return merged


def _worker_main(loop_config: dict[str, Any]) -> None:
    """One worker of the gang: runs the trainable's loop as this rank."""
    context = ray.train.get_context()
    gang: Gang = loop_config["gang"]
    enter_gang_worker(
        GangWorker(
            rank=context.get_world_rank(),
            size=context.get_world_size(),
            trial_id=loop_config["trial"],
            cpus=gang.cpu,
            gpus=gang.gpu,
            start=loop_config["start"],
        )
    )
    node_id.cache_clear()
    if context.get_world_rank() == 0:
        group = ray.util.get_current_placement_group()
        ray.get(loop_config["mailbox"].placed.remote(group))
    try:
        loop_config["per_worker"](loop_config["config"])
    finally:
        enter_gang_worker(None)


def shard(dataset: Any) -> Any:
    """This worker's share of a training set: every `world_size()`-th sample from its rank on,
    padded by wrapping around so that every worker gets as many (and takes as many steps);
    the whole set in a one-worker trial. A `TensorDataset` stays one."""
    # torch loads only where a trial trains with it.
    import torch
    from torch.utils.data import Subset, TensorDataset

    worker = gang_worker()
    if worker is None or worker.size == 1:
        return dataset
    n = len(dataset)
    per_worker = math.ceil(n / worker.size)
    indices = torch.tensor([(worker.rank + k * worker.size) % n for k in range(per_worker)])
    if isinstance(dataset, TensorDataset):
        return TensorDataset(*(t[indices] for t in dataset.tensors))
    return Subset(dataset, indices.tolist())


def prepare_model(model: Any) -> Any:
    """The model wrapped for data-parallel training (`DistributedDataParallel`, on this
    worker's device); the model itself in a one-worker trial."""
    worker = gang_worker()
    if worker is None or worker.size == 1:
        return model
    from ray.train.torch import prepare_model as ray_prepare_model  # torch, as above

    return ray_prepare_model(model)


def worker_device() -> Any:
    """This worker's torch device in a data-parallel trial with GPUs (Ray Train picks the
    GPU of each local rank); None otherwise."""
    worker = gang_worker()
    if worker is None or worker.gpus <= 0:
        return None
    from ray.train.torch import get_device  # torch, as above

    return get_device()


def mean_over_workers(value: float, device: Any = None) -> float:
    """The mean of `value` over the gang's workers (itself in a one-worker trial); every
    worker must call it."""
    worker = gang_worker()
    if worker is None or worker.size == 1:
        return value
    # torch, as above.
    import torch
    import torch.distributed as dist

    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total.item()) / worker.size


def from_rank_zero(value: Any) -> Any:
    """Rank 0's `value` on every worker (its own in a one-worker trial): decisions that must
    agree, such as an early stop or a checkpoint, are taken once; every worker must call it."""
    worker = gang_worker()
    if worker is None or worker.size == 1:
        return value
    import torch.distributed as dist  # torch, as above

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def weights_checksum(model: Any) -> float:
    """The sum of a model's parameters in float64: equal on every worker when their
    gradients were synchronised."""
    import torch  # torch, as above

    with torch.no_grad():
        return float(sum(p.detach().double().sum().item() for p in model.parameters()))
