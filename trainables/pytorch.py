"""A PyTorch trainable: the user gives a model factory and data; tunefleet owns the loop.

    from tunefleet.trainables import TorchTrainable

    def make_model(config):            # config holds every sampled hyperparameter
        return torch.nn.Sequential(...)

    def load_data():                   # called once, on the driver
        return train_dataset, val_dataset

    digits = TorchTrainable(model=make_model, data=load_data)

The spec then names `mymodule:digits`. The datasets travel once through Ray's object store
(`tune.with_parameters`). The loop reads these config keys (defaults in brackets):
`epochs` [10], `lr` [1e-3], `batch_size` [64], `optimizer` [adam] (`sgd`, `adam`, `adamw`,
`rmsprop`), `weight_decay` [0], `momentum` [0.9, sgd/rmsprop], `nesterov` [false],
`lr_schedule` [none] (`step`, `exponential`, `cosine`, `cosine_warm_restarts`),
`lr_step_size` [10], `lr_gamma` [0.1 for step, 0.95 for exponential], `lr_restart_epochs` [10],
`warmup_epochs` [0], `grad_clip` [none], `patience` [none: no early stopping],
`checkpoint_every` [none: time-based], `checkpoint_every_s` [10], `seed` [0], `amp` [false:
mixed precision, float16 with a loss scale on a GPU, bfloat16 on the CPU], `num_workers` [0:
processes loading a dataset's batches; in-memory tensors need none], `pin_memory` [true on a
GPU]. Every epoch
reports `train_loss`, `val_loss`, `val_<metric>` for each metric, `lr` and `epoch` (and, first
after a restore, `restored_from`: the trial whose checkpoint it continued from). A checkpoint
holds the model, optimizer, schedule, epoch, early-stopping state and RNG state, so a restored
trial continues exactly where it stopped. It is saved every `checkpoint_every` epochs when
that is set (0: never), otherwise at the first epoch that ends `checkpoint_every_s` seconds
after the previous save, and always at the last epoch and at an early stop: saving a small
model every epoch can cost as much as the epoch itself, and a failed trial loses at most
`checkpoint_every_s` seconds of training. Schedulers that restore trials from checkpoints
(PBT, PB2, HyperBand's pauses) get `checkpoint_every: 1` from tunefleet unless the spec sets
it. A trial restored from another's checkpoint (a PBT exploit) keeps its own config: `lr`,
`weight_decay` and `momentum` are set from it again, and the schedule goes on from the
checkpoint's epoch with the new base `lr`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs
import torch
from ray import tune
from torch.utils.data import Dataset

from tunefleet.common.errors import TunefleetError
from tunefleet.trainables.api import (
    get_checkpoint,
    report,
    trial_cpus,
    trial_gpus,
    trial_id,
    worker_rank,
    world_size,
)
from tunefleet.trainables.contract import Wrapper
from tunefleet.trainables.data_parallel import (
    Gang,
    from_rank_zero,
    mean_over_workers,
    prepare_model,
    run_gang,
    shard,
    weights_checksum,
    worker_device,
)
from tunefleet.trainables.torch_training import (
    LOSSES,
    METRICS,
    OPTIMIZERS,
    SCHEDULES,
    LossFn,
    MetricFn,
    Training,
    TrainingSettings,
)

__all__ = [
    "LOSSES",
    "METRICS",
    "OPTIMIZERS",
    "SCHEDULES",
    "NoCudaError",
    "TorchTrainable",
    "trial_device",
]

_STATE_FILE = "state.pt"


class NoCudaError(TunefleetError, RuntimeError):
    """A trial reserved a GPU that torch cannot use."""


def trial_device(gpus: float) -> torch.device:
    """The device a trial (or a final retraining) trains on: CUDA when it reserved a GPU,
    a fraction included (`gpu: 0.5` trials share one: Ray makes only theirs visible), the
    CPU otherwise.

    Raises:
        NoCudaError: If a GPU was reserved but torch sees no CUDA device: the trial fails
            with that line instead of training on the CPU while the GPU sits reserved.
    """
    if gpus <= 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise NoCudaError(
            f"resources.gpu: the trial reserved {gpus:g} GPU, but torch {torch.__version__} "
            "sees no CUDA device; install a CUDA build of torch where the trials run, or set "
            "resources.gpu: 0 to train on the CPU."
        )
    return torch.device("cuda")


@dataclass(frozen=True)
class TorchTrainable(Wrapper):
    """Tunes a PyTorch model built by `model(config)` on the datasets `data()` returns.

    Args:
        model: `(config) -> torch.nn.Module`.
        data: `() -> (train_dataset, val_dataset)`; called once, on the driver. A test set
            must not be returned here: the search never sees it.
        loss: A name in `LOSSES` or a callable `(outputs, targets) -> tensor`.
        metrics: Validation metrics: names in `METRICS` or name -> `(outputs, targets) -> float`.
        monitor: The reported metric early stopping watches (`patience` in the config).
        monitor_mode: `min` or `max` for `monitor`.
        defaults: Config values used when the spec's space does not set them.
        test: `() -> test_dataset`: the held-out split for the final evaluation
            (`tunefleet evaluate`; see `evaluate`), never seen by the search.
    """

    model: Callable[[dict[str, Any]], torch.nn.Module]
    data: Callable[[], tuple[Dataset[Any], Dataset[Any]]]
    loss: str | LossFn = "cross_entropy"
    metrics: Sequence[str] | Mapping[str, MetricFn] = ("accuracy",)
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    test: Callable[[], Dataset[Any]] | None = None

    supports_checkpoints = True  # saves the full state (see `checkpoint_every`)
    checkpoint_key = "checkpoint_every"  # set to 1 for schedulers that restore checkpoints
    # Keys that decide the kind of optimizer / schedule state a checkpoint holds: PBT must not
    # change them in a running trial (`tunefleet.search.combinations.check_mutations`).
    structural_keys = ("optimizer", "lr_schedule")
    iterative = True  # one result per epoch: early-stopping schedulers apply
    reads_seed = True
    data_parallel = True  # `resources.workers`: DDP on a gang (see `_train`)

    def __post_init__(self) -> None:
        if isinstance(self.loss, str) and self.loss not in LOSSES:
            raise ValueError(f"loss: {self.loss!r} is not one of {', '.join(LOSSES)}.")
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"monitor_mode must be 'min' or 'max', got {self.monitor_mode!r}.")
        for name in self.metrics if not isinstance(self.metrics, Mapping) else ():
            if name not in METRICS:
                raise ValueError(f"metrics: {name!r} is not one of {', '.join(METRICS)}.")
        reported = ["train_loss", "val_loss", "lr", *(f"val_{m}" for m in self.metrics)]
        if self.monitor not in reported:
            raise ValueError(
                f"monitor: {self.monitor!r} is not reported; choose one of {reported}."
            )

    def to_tune(self) -> Any:
        """Loads the data once and returns the Ray Tune function trainable."""
        train_set, val_set = self.data()
        return tune.with_parameters(_train, wrapper=self, train_set=train_set, val_set=val_set)

    @property
    def preset_keys(self) -> frozenset[str]:
        """The keys of `defaults`."""
        return frozenset(self.defaults)

    @property
    def has_test(self) -> bool:
        """Whether a held-out test split is configured."""
        return self.test is not None

    def held_out_metric(self, metric: str) -> str:
        """The score name in `evaluate`'s result for the search's `metric` (`val_accuracy`
        -> `accuracy`)."""
        return metric.removeprefix("val_")

    def evaluate(
        self,
        config: dict[str, Any],
        *,
        seed: int,
        cpus: float = 1,
        gpus: float = 0,
        workers: int = 1,
    ) -> dict[str, float]:
        """Trains `config` with `seed` on the training split; returns validation and test
        scores.

        The training is the search's (the same epochs, the same loop, early stopping by
        `patience` on the validation split included, on as many workers), and the final
        model is scored on both splits, so the validation-to-test gap measures how much
        choosing the config by its validation score flattered it. (Retraining on train +
        validation would leave no validation score to compare with.)

        Args:
            config: A trial config from the search.
            seed: Replaces the config's seed (torch, numpy, random and batch order).
            cpus: torch's thread count (per worker).
            gpus: The GPUs reserved for it (per worker): it trains on the GPU as the
                search's trials do.
            workers: Trains data-parallel on this many Ray Train workers, as the search's
                trials did (`data()` and `test()` are then called on each).

        Returns:
            `val_loss`, `test_loss`, `val_<metric>` and `test_<metric>` for each metric,
            `epochs` (how many ran) and `workers` (how many trained).

        Raises:
            ValueError: If the wrapper has no `test` split.
            NoCudaError: If a GPU was reserved but torch sees no CUDA device.
        """
        if self.test is None:
            raise ValueError("this TorchTrainable has no `test` split to evaluate on.")
        config = {**self.defaults, **config, "seed": seed}
        config.pop("__trial_index__", None)
        if workers <= 1:
            torch.set_num_threads(max(1, int(cpus)))
            return self._evaluate_here(config, trial_device(gpus))
        return _evaluate_on_gang(self, config, Gang(workers=workers, cpu=cpus, gpu=gpus))

    def _evaluate_here(self, config: dict[str, Any], device: torch.device) -> dict[str, float]:
        """`evaluate` in this process, or on this worker of a gang (rank 0 scores)."""
        assert self.test is not None
        settings = TrainingSettings.from_config(config)
        train_set, val_set = self.data()
        test_set = self.test()
        training = self.start_training(config, settings, shard(train_set), val_set, device)
        if world_size() > 1:
            training.parallel = prepare_model(training.model)
        epochs = 0
        for _ in range(settings.epochs):
            training.train_epoch()
            epochs += 1
            if settings.patience is None:
                continue
            stop = worker_rank() == 0 and training.stopping.update(
                training.score().get(self.monitor)
            )
            if from_rank_zero(stop):
                break
        if worker_rank() != 0:
            return {}
        val, test = training.score(), training.score(test_set)
        scores = {**val, **{"test_" + k.removeprefix("val_"): v for k, v in test.items()}}
        scores["epochs"] = float(epochs)
        scores["workers"] = float(world_size())
        return scores

    def start_training(
        self,
        config: dict[str, Any],
        settings: TrainingSettings,
        train_set: Dataset[Any],
        val_set: Dataset[Any],
        device: torch.device,
    ) -> Training:
        """The model `config` builds, seeded and ready to train (see `Training.start`)."""
        return Training.start(
            settings,
            build_model=lambda: self.model(config),
            loss_fn=self.loss_fn(),
            metric_fns=self.metric_fns(),
            train_set=train_set,
            val_set=val_set,
            monitor_mode=self.monitor_mode,
            device=device,
        )

    def metric_fns(self) -> dict[str, MetricFn]:
        """Name -> `(outputs, targets) -> float` for each validation metric."""
        if isinstance(self.metrics, Mapping):
            return dict(self.metrics)
        return {name: METRICS[name] for name in self.metrics}

    def loss_fn(self) -> LossFn:
        """The training loss."""
        return LOSSES[self.loss]() if isinstance(self.loss, str) else self.loss


def _train(
    config: dict[str, Any],
    *,
    wrapper: TorchTrainable,
    train_set: Dataset[Any],
    val_set: Dataset[Any],
) -> None:
    """The function trainable Ray Tune runs for each trial: one result per epoch. In a
    data-parallel trial it runs on every worker: each trains on its shard of the training
    set with gradients averaged (DDP), rank 0 scores and decides early stops and
    checkpoints for all, and each reports its shard's size and a checksum of its weights
    (`workers/<rank>/samples`, `workers/<rank>/weights`; after a restore, first, the epoch
    of the checkpoint it loaded: `workers/<rank>/restored_epoch`)."""
    config = {**wrapper.defaults, **config}
    settings = TrainingSettings.from_config(config)
    torch.set_num_threads(trial_cpus())
    device = _device()
    shard_set = shard(train_set)
    training = wrapper.start_training(config, settings, shard_set, val_set, device)
    start_epoch, restored_from = _restore(training, device)
    # Each worker says which checkpoint it loaded, in its first result after a restore.
    restored_epoch = start_epoch - 1 if restored_from is not None else None
    gang = world_size() > 1
    if gang:
        training.parallel = prepare_model(training.model)
    rank_zero = worker_rank() == 0
    clock = _CheckpointClock(settings)
    for epoch in range(start_epoch, settings.epochs):
        lr = training.lr
        train_loss = mean_over_workers(training.train_epoch(), device)
        metrics: dict[str, Any] = {"train_loss": train_loss, "lr": lr, "epoch": epoch}
        early_stop = save = False
        if rank_zero:
            metrics.update(training.score())
            if restored_from is not None:
                # The first result after a restore names the trial whose checkpoint it
                # came from: itself after a failure, another trial after a PBT exploit.
                metrics["restored_from"] = restored_from
            early_stop = training.stopping.update(metrics.get(wrapper.monitor))
            save = clock.due(epoch) or early_stop
        restored_from = None
        metrics, early_stop, save = from_rank_zero((metrics, early_stop, save))
        if gang:
            own = {"samples": len(shard_set), "weights": weights_checksum(training.model)}
            if restored_epoch is not None:
                own["restored_epoch"], restored_epoch = restored_epoch, None
            metrics = {**metrics, "worker": own}
        if save:
            clock.saved()
        if save and rank_zero:
            _report_with_checkpoint(metrics, training, epoch)
        else:
            report(metrics)
        if early_stop:
            return


def _device() -> torch.device:
    """This trial's (or data-parallel worker's) device; see `trial_device`."""
    device = trial_device(trial_gpus())
    if device.type == "cuda":
        return worker_device() or device
    return device


def _evaluate_on_gang(
    wrapper: TorchTrainable, config: dict[str, Any], gang: Gang
) -> dict[str, float]:
    """`evaluate` on a gang of Ray Train workers; rank 0's scores."""

    def per_worker(config: dict[str, Any]) -> None:
        torch.set_num_threads(trial_cpus())
        report(wrapper._evaluate_here(config, _device()))

    scores: dict[str, float] = {}

    def keep(metrics: dict[str, Any], checkpoint: Any) -> None:
        scores.update({k: v for k, v in metrics.items() if k not in ("workers", "node_id")})
        scores["workers"] = float(len(metrics["workers"]))  # the ranks that reported

    with tempfile.TemporaryDirectory() as folder:
        run_gang(
            per_worker, config, gang, report=keep, storage=(pyarrow.fs.LocalFileSystem(), folder)
        )
    return scores


def _restore(training: Training, device: torch.device) -> tuple[int, str | None]:
    """Continues from the trial's checkpoint, if it has one; returns the first epoch to train
    and the trial the checkpoint came from (None without one)."""
    checkpoint = get_checkpoint()
    if checkpoint is None:
        return 0, None
    with checkpoint.as_directory() as directory:
        state = torch.load(Path(directory, _STATE_FILE), map_location=device, weights_only=False)
    training.restore(state)
    return state["epoch"] + 1, state.get("trial_id")


class _CheckpointClock:
    """Decides which epochs save a checkpoint: every `checkpoint_every` epochs when that is
    set (0: never), otherwise the first that ends `checkpoint_every_s` seconds after the
    previous save; always the last epoch."""

    def __init__(self, settings: TrainingSettings) -> None:
        self.settings = settings
        self.saved_at = time.monotonic()

    def saved(self) -> None:
        self.saved_at = time.monotonic()

    def due(self, epoch: int) -> bool:
        s = self.settings
        last = epoch == s.epochs - 1
        if s.checkpoint_every is None:
            return last or time.monotonic() - self.saved_at >= s.checkpoint_every_s
        return s.checkpoint_every > 0 and ((epoch + 1) % s.checkpoint_every == 0 or last)


def _report_with_checkpoint(metrics: dict[str, Any], training: Training, epoch: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        state = {**training.state(), "epoch": epoch, "trial_id": trial_id()}
        torch.save(state, Path(directory, _STATE_FILE))
        report(metrics, checkpoint=directory)
