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
`checkpoint_every` [none: time-based], `checkpoint_every_s` [10], `seed` [0]. Every epoch
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

import math
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from tunefleet.trainables.api import get_checkpoint, report, trial_cpus, trial_gpus, trial_id

__all__ = ["LOSSES", "METRICS", "OPTIMIZERS", "SCHEDULES", "TorchTrainable"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "step", "exponential", "cosine", "cosine_warm_restarts")
LOSSES: dict[str, Callable[[], nn.Module]] = {
    "cross_entropy": nn.CrossEntropyLoss,
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
    "nll": nn.NLLLoss,
}

MetricFn = Callable[[torch.Tensor, torch.Tensor], float]


def _accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float((outputs.argmax(dim=1) == targets).float().mean())


METRICS: dict[str, MetricFn] = {"accuracy": _accuracy}

_STATE_FILE = "state.pt"


@dataclass(frozen=True)
class TorchTrainable:
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
            (`tunefleet evaluate`; see `tunefleet.trainables.held_out`), never seen by the search.
    """

    model: Callable[[dict[str, Any]], nn.Module]
    data: Callable[[], tuple[Dataset[Any], Dataset[Any]]]
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "cross_entropy"
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
        from ray import tune

        train_set, val_set = self.data()
        return tune.with_parameters(_train, wrapper=self, train_set=train_set, val_set=val_set)

    @property
    def has_test(self) -> bool:
        """Whether a held-out test split is configured."""
        return self.test is not None

    def held_out_metric(self, metric: str) -> str:
        """The score name in `evaluate`'s result for the search's `metric` (`val_accuracy`
        -> `accuracy`)."""
        return metric.removeprefix("val_")

    def evaluate(self, config: dict[str, Any], *, seed: int, cpus: int = 1) -> dict[str, float]:
        """Retrains `config` with `seed`; returns `val_<name>` and `test_<name>` scores."""
        from tunefleet.trainables.held_out import evaluate_torch

        return evaluate_torch(self, config, seed=seed, cpus=cpus)

    def metric_fns(self) -> dict[str, MetricFn]:
        if isinstance(self.metrics, Mapping):
            return dict(self.metrics)
        return {name: METRICS[name] for name in self.metrics}

    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return LOSSES[self.loss]() if isinstance(self.loss, str) else self.loss


@dataclass(frozen=True)
class _Settings:
    epochs: int
    lr: float
    batch_size: int
    optimizer: str
    weight_decay: float
    momentum: float
    nesterov: bool
    lr_schedule: str
    lr_step_size: int
    lr_gamma: float | None
    lr_restart_epochs: int
    warmup_epochs: int
    grad_clip: float | None
    patience: int | None
    checkpoint_every: int | None
    checkpoint_every_s: float
    seed: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> _Settings:
        get = config.get
        settings = cls(
            epochs=int(get("epochs", 10)),
            lr=float(get("lr", 1e-3)),
            batch_size=int(get("batch_size", 64)),
            optimizer=str(get("optimizer", "adam")),
            weight_decay=float(get("weight_decay", 0.0)),
            momentum=float(get("momentum", 0.9)),
            nesterov=bool(get("nesterov", False)),
            lr_schedule=str(get("lr_schedule", "none")),
            lr_step_size=int(get("lr_step_size", 10)),
            lr_gamma=_optional(config, "lr_gamma", float),
            lr_restart_epochs=int(get("lr_restart_epochs", 10)),
            warmup_epochs=int(get("warmup_epochs", 0)),
            grad_clip=_optional(config, "grad_clip", float),
            patience=_optional(config, "patience", int),
            checkpoint_every=_optional(config, "checkpoint_every", int),
            checkpoint_every_s=float(get("checkpoint_every_s", 10.0)),
            # `repeat` evaluates a config several times: Ray's Repeater numbers the copies.
            seed=int(get("seed", 0)) + int(get("__trial_index__", 0)),
        )
        if settings.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: {settings.optimizer!r} is not one of {OPTIMIZERS}.")
        if settings.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule: {settings.lr_schedule!r} is not one of {SCHEDULES}.")
        return settings


def _optional(config: Mapping[str, Any], key: str, cast: Callable[[Any], Any]) -> Any:
    value = config.get(key)
    return None if value is None else cast(value)


def _make_optimizer(params: Any, s: _Settings) -> torch.optim.Optimizer:
    if s.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=s.lr,
            momentum=s.momentum,
            nesterov=s.nesterov and s.momentum > 0,
            weight_decay=s.weight_decay,
        )
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr, weight_decay=s.weight_decay)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    return torch.optim.RMSprop(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)


def _make_schedule(
    opt: torch.optim.Optimizer, s: _Settings
) -> torch.optim.lr_scheduler.LRScheduler:
    """An epoch-wise learning-rate schedule, with optional linear warm-up in front."""
    sched = torch.optim.lr_scheduler
    main_epochs = max(1, s.epochs - s.warmup_epochs)
    main: sched.LRScheduler
    if s.lr_schedule == "step":
        main = sched.StepLR(opt, step_size=s.lr_step_size, gamma=s.lr_gamma or 0.1)
    elif s.lr_schedule == "exponential":
        main = sched.ExponentialLR(opt, gamma=s.lr_gamma or 0.95)
    elif s.lr_schedule == "cosine":
        main = sched.CosineAnnealingLR(opt, T_max=main_epochs)
    elif s.lr_schedule == "cosine_warm_restarts":
        main = sched.CosineAnnealingWarmRestarts(opt, T_0=max(1, s.lr_restart_epochs))
    else:
        main = sched.ConstantLR(opt, factor=1.0, total_iters=0)
    if s.warmup_epochs <= 0:
        return main
    warmup = sched.LinearLR(
        opt, start_factor=1.0 / (s.warmup_epochs + 1), total_iters=s.warmup_epochs
    )
    return sched.SequentialLR(opt, [warmup, main], milestones=[s.warmup_epochs])


class _Batches:
    """Mini-batches: index slicing for in-memory tensors, a seeded DataLoader otherwise."""

    def __init__(self, dataset: Dataset[Any], batch_size: int, generator: torch.Generator) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.generator = generator
        self.tensors = dataset.tensors if isinstance(dataset, TensorDataset) else None

    def __call__(self, *, shuffle: bool) -> Any:
        if self.tensors is None:
            loader = DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                shuffle=shuffle,
                generator=self.generator if shuffle else None,
            )
            yield from loader
            return
        n = len(self.tensors[0])
        order = torch.randperm(n, generator=self.generator) if shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


def _seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "shuffle": generator.get_state(),
    }


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["shuffle"])


def _train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    target: torch.Tensor,
    grad_clip: float | None,
) -> torch.Tensor:
    """One optimizer step on one batch (gradients clipped to `grad_clip`); the batch loss."""
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(inputs), target)
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss


def _evaluate(
    model: nn.Module,
    batches: _Batches,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    metric_fns: Mapping[str, MetricFn],
    device: torch.device,
) -> dict[str, float]:
    model.eval()
    outputs, targets = [], []
    with torch.no_grad():
        for inputs, target in batches(shuffle=False):
            outputs.append(model(inputs.to(device)))
            targets.append(target.to(device))
    out, tgt = torch.cat(outputs), torch.cat(targets)
    metrics = {"val_loss": float(loss_fn(out, tgt))}
    for name, fn in metric_fns.items():
        metrics[f"val_{name}"] = float(fn(out, tgt))
    return metrics


def _load_optimizer_state(
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    state: Mapping[str, Any],
    s: _Settings,
) -> None:
    """Restores the optimizer and schedule from a checkpoint, keeping this trial's config.

    The checkpoint may come from another trial (a PBT exploit) whose config differed:
    `load_state_dict` would bring back that trial's `lr`, `weight_decay`, `momentum` and the
    schedule's base learning rates, and the perturbed values would never take effect. After
    loading, these come from `s` again. The current learning rate is the checkpoint's scaled
    by new base / old base, which is the schedule's value at this epoch for the new base
    (every schedule here is a multiple of its base rate). With the same config (a trial
    restored after a failure) nothing changes, so the run continues bit for bit.
    """
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    for group in optimizer.param_groups:
        old_base = group.get("initial_lr", s.lr)  # every schedule records its base rate here
        if s.lr != old_base:
            group["lr"] = s.lr * (group["lr"] / old_base) if old_base else s.lr
            group["initial_lr"] = s.lr
        group["weight_decay"] = s.weight_decay
        if "momentum" in group:  # sgd, rmsprop
            group["momentum"] = s.momentum
        if "nesterov" in group:
            group["nesterov"] = s.nesterov and s.momentum > 0
    schedule._last_lr = [group["lr"] for group in optimizer.param_groups]
    pending = [schedule]
    while pending:  # SequentialLR (warm-up) holds schedules with base rates of their own
        current = pending.pop()
        if hasattr(current, "base_lrs"):
            current.base_lrs = [s.lr] * len(current.base_lrs)
        pending.extend(getattr(current, "_schedulers", []))


def _train(
    config: dict[str, Any],
    *,
    wrapper: TorchTrainable,
    train_set: Dataset[Any],
    val_set: Dataset[Any],
) -> None:
    """The function trainable Ray Tune runs for each trial."""
    config = {**wrapper.defaults, **config}
    s = _Settings.from_config(config)
    torch.set_num_threads(trial_cpus())
    use_cuda = trial_gpus() > 0 and torch.cuda.is_available()
    device = torch.device("cuda" if use_cuda else "cpu")

    generator = _seed_everything(s.seed)
    model = wrapper.model(config).to(device)
    optimizer = _make_optimizer(model.parameters(), s)
    schedule = _make_schedule(optimizer, s)
    loss_fn = wrapper.loss_fn()
    metric_fns = wrapper.metric_fns()
    train_batches = _Batches(train_set, s.batch_size, generator)
    val_batches = _Batches(val_set, max(s.batch_size, 1024), generator)
    sign = 1.0 if wrapper.monitor_mode == "min" else -1.0
    best, bad_epochs, start_epoch = math.inf, 0, 0
    restored_from: str | None = None
    saved_at = time.monotonic()

    checkpoint = get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = torch.load(
                Path(directory, _STATE_FILE), map_location=device, weights_only=False
            )
        model.load_state_dict(state["model"])
        _load_optimizer_state(optimizer, schedule, state, s)
        _set_rng_state(state["rng"], generator)
        best, bad_epochs, start_epoch = state["best"], state["bad_epochs"], state["epoch"] + 1
        restored_from = state.get("trial_id")

    for epoch in range(start_epoch, s.epochs):
        model.train()
        total, count = 0.0, 0
        lr = optimizer.param_groups[0]["lr"]
        for inputs, target in train_batches(shuffle=True):
            inputs, target = inputs.to(device), target.to(device)
            loss = _train_step(model, optimizer, loss_fn, inputs, target, s.grad_clip)
            total += float(loss) * len(target)
            count += len(target)
        schedule.step()
        metrics: dict[str, Any] = {"train_loss": total / max(count, 1), "lr": lr, "epoch": epoch}
        metrics.update(_evaluate(model, val_batches, loss_fn, metric_fns, device))
        if restored_from is not None:
            # The first result after a restore names the trial whose checkpoint it came
            # from: itself after a failure, another trial after a PBT exploit.
            metrics["restored_from"], restored_from = restored_from, None

        watched = metrics.get(wrapper.monitor)
        if watched is not None and sign * watched < best:
            best, bad_epochs = sign * watched, 0
        else:
            bad_epochs += 1
        last = epoch == s.epochs - 1
        early_stop = s.patience is not None and bad_epochs >= s.patience
        if s.checkpoint_every is None:
            save = last or time.monotonic() - saved_at >= s.checkpoint_every_s
        else:
            save = s.checkpoint_every > 0 and ((epoch + 1) % s.checkpoint_every == 0 or last)
        if save or early_stop:
            saved_at = time.monotonic()
            with tempfile.TemporaryDirectory() as directory:
                state = {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "rng": _rng_state(generator),
                    "epoch": epoch,
                    "trial_id": trial_id(),
                    "best": best,
                    "bad_epochs": bad_epochs,
                }
                torch.save(state, Path(directory, _STATE_FILE))
                report(metrics, checkpoint=directory)
        else:
            report(metrics)
        if early_stop:
            return
