"""The PyTorch wrapper's training, step by step: the API both a search trial and the held-out
retraining train with, so that they train alike.

`TrainingSettings.from_config` reads the config keys the loop uses (see
`tunefleet.trainables.pytorch`); `Training` holds one model's optimizer, schedule, batches,
random state and early-stopping state, and trains it one epoch at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from tunefleet.trainables.torch_batches import (
    Batches,
    Precision,
    rng_state,
    seed_everything,
    set_rng_state,
)

__all__ = [
    "LOSSES",
    "METRICS",
    "OPTIMIZERS",
    "SCHEDULES",
    "EarlyStopping",
    "LossFn",
    "MetricFn",
    "Training",
    "TrainingSettings",
    "load_optimizer_state",
    "make_optimizer",
    "make_schedule",
    "rng_state",
    "score",
    "seed_everything",
    "set_rng_state",
    "train_step",
]

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
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float((outputs.argmax(dim=1) == targets).float().mean())


METRICS: dict[str, MetricFn] = {"accuracy": _accuracy}

EVAL_BATCH_SIZE = 1024  # scoring keeps no gradients: larger batches are cheap


@dataclass(frozen=True)
class TrainingSettings:
    """The config keys the training loop reads, with their defaults (see
    `tunefleet.trainables.pytorch`)."""

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
    amp: bool = False
    num_workers: int = 0
    pin_memory: bool | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainingSettings:
        """Reads the settings from a trial config.

        Raises:
            ValueError: If `optimizer` or `lr_schedule` names none of the known ones.
        """
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
            amp=bool(get("amp", False)),
            num_workers=int(get("num_workers", 0)),
            pin_memory=_optional(config, "pin_memory", bool),
        )
        if settings.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: {settings.optimizer!r} is not one of {OPTIMIZERS}.")
        if settings.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule: {settings.lr_schedule!r} is not one of {SCHEDULES}.")
        return settings


def _optional(config: Mapping[str, Any], key: str, cast: Callable[[Any], Any]) -> Any:
    value = config.get(key)
    return None if value is None else cast(value)


def make_optimizer(params: Any, s: TrainingSettings) -> torch.optim.Optimizer:
    """The optimizer `s.optimizer` names, with its learning rate, weight decay and momentum."""
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


def make_schedule(
    opt: torch.optim.Optimizer, s: TrainingSettings
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


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    inputs: torch.Tensor,
    target: torch.Tensor,
    grad_clip: float | None,
    precision: Precision | None = None,
) -> torch.Tensor:
    """One optimizer step on one batch (gradients clipped to `grad_clip`), in mixed
    precision when `precision` says so; the batch loss."""
    precision = precision or Precision.full()
    optimizer.zero_grad(set_to_none=True)
    with precision.autocast():
        loss = loss_fn(model(inputs), target)
    precision.scaler.scale(loss).backward()
    if grad_clip is not None:
        precision.scaler.unscale_(optimizer)  # clip the true gradients
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    precision.scaler.step(optimizer)
    precision.scaler.update()
    return loss


def score(
    model: nn.Module,
    batches: Batches,
    loss_fn: LossFn,
    metric_fns: Mapping[str, MetricFn],
    device: torch.device,
) -> dict[str, float]:
    """`val_loss` and `val_<name>` for each metric, over every batch at once."""
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


def load_optimizer_state(
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    state: Mapping[str, Any],
    s: TrainingSettings,
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


@dataclass
class EarlyStopping:
    """Counts the epochs since the watched metric last improved.

    Attributes:
        mode: `min` or `max` for the watched metric.
        patience: Stop after this many epochs without improvement (None: never).
        best: The best value so far, negated for `max` (so that lower is always better).
        bad_epochs: Epochs since `best`.
    """

    mode: str
    patience: int | None
    best: float = math.inf
    bad_epochs: int = 0

    def update(self, value: float | None) -> bool:
        """Records one epoch's value of the watched metric (None: not measured); returns
        whether training should stop."""
        sign = 1.0 if self.mode == "min" else -1.0
        signed = None if value is None else sign * value
        if signed is not None and signed < self.best:
            self.best, self.bad_epochs = signed, 0
        else:
            self.bad_epochs += 1
        return self.patience is not None and self.bad_epochs >= self.patience


@dataclass
class Training:
    """One model in training: its optimizer, schedule, batches, random state and
    early-stopping state. `start` builds it; each `train_epoch` trains one epoch.
    """

    settings: TrainingSettings
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    loss_fn: LossFn
    metric_fns: Mapping[str, MetricFn]
    train_batches: Batches
    val_batches: Batches
    stopping: EarlyStopping
    device: torch.device
    precision: Precision
    # The model as it trains when that differs from `model`: wrapped for data-parallel
    # training. `model` stays the plain module, for scoring and checkpoints.
    parallel: nn.Module | None = None

    @classmethod
    def start(
        cls,
        settings: TrainingSettings,
        *,
        build_model: Callable[[], nn.Module],
        loss_fn: LossFn,
        metric_fns: Mapping[str, MetricFn],
        train_set: Dataset[Any],
        val_set: Dataset[Any],
        monitor_mode: str,
        device: torch.device,
    ) -> Training:
        """Seeds every generator with `settings.seed`, then builds the model (so that its
        initial weights follow the seed), optimizer, schedule and batches."""
        generator = seed_everything(settings.seed)
        model = build_model().to(device)
        optimizer = make_optimizer(model.parameters(), settings)
        # Pinned host memory speeds copies to a GPU (on by default there); the CPU has none.
        pin = device.type == "cuda" and settings.pin_memory is not False
        loading: dict[str, Any] = {"num_workers": settings.num_workers, "pin_memory": pin}
        return cls(
            settings=settings,
            model=model,
            optimizer=optimizer,
            schedule=make_schedule(optimizer, settings),
            generator=generator,
            loss_fn=loss_fn,
            metric_fns=metric_fns,
            train_batches=Batches(train_set, settings.batch_size, generator, **loading),
            val_batches=Batches(
                val_set, max(settings.batch_size, EVAL_BATCH_SIZE), generator, **loading
            ),
            stopping=EarlyStopping(monitor_mode, settings.patience),
            device=device,
            precision=Precision.of(settings.amp, device),
        )

    @property
    def lr(self) -> float:
        """The learning rate the next epoch trains with."""
        return float(self.optimizer.param_groups[0]["lr"])

    def train_epoch(self) -> float:
        """Trains one epoch on shuffled batches and steps the schedule; the mean batch loss
        over the epoch's samples."""
        self.model.train()
        total, count = 0.0, 0
        for inputs, target in self.train_batches(shuffle=True):
            inputs = inputs.to(self.device, non_blocking=True)
            target = target.to(self.device, non_blocking=True)
            loss = train_step(
                self.model if self.parallel is None else self.parallel,
                self.optimizer,
                self.loss_fn,
                inputs,
                target,
                self.settings.grad_clip,
                self.precision,
            )
            total += loss.item() * len(target)
            count += len(target)
        self.schedule.step()
        return total / max(count, 1)

    def score(self, dataset: Dataset[Any] | None = None) -> dict[str, float]:
        """`val_loss` and `val_<metric>` on the validation split, or on `dataset`."""
        batches = self.val_batches
        if dataset is not None:
            batches = Batches(dataset, EVAL_BATCH_SIZE, self.generator)
        return score(self.model, batches, self.loss_fn, self.metric_fns, self.device)

    def state(self) -> dict[str, Any]:
        """Everything a restored training needs to continue exactly (see `restore`)."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": rng_state(self.generator),
            "best": self.stopping.best,
            "bad_epochs": self.stopping.bad_epochs,
            "scaler": self.precision.scaler.state_dict(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continues from a `state()`, possibly another trial's, with this one's settings."""
        self.model.load_state_dict(state["model"])
        load_optimizer_state(self.optimizer, self.schedule, state, self.settings)
        set_rng_state(state["rng"], self.generator)
        self.stopping.best, self.stopping.bad_epochs = state["best"], state["bad_epochs"]
        if state.get("scaler"):  # a mixed-precision GPU trial's loss scale goes on too
            self.precision.scaler.load_state_dict(state["scaler"])
