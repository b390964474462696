"""The digits workloads the time-to-target cases train, and what every case shares.

`mlp`: the quickstart's PyTorch MLP on scikit-learn's digits (the train/validation split of
`tunefleet.trainables.examples.digits`), up to 20 epochs a trial, searching lr, batch size,
width, dropout, weight decay and optimizer, to 0.98 validation accuracy; `cnn`: the small
CNN of `benchmarks.digits_cnn` (30 epochs, channels too), to 0.99. For each: the plain
PyTorch loop an Optuna or Ray user writes (`epochs`), tunefleet's timed `TorchTrainable`
(`timed_trainable`, `timed_cnn_trainable`), and the standalone Optuna study
(`optuna_study`, `suggest`).

Every epoch of every case appends (time, accuracy) to the file `TUNEFLEET_BENCH_EVENTS`
names, and the steps before the first epoch to the timeline file
(`tunefleet.common.timeline.mark`), which `benchmarks.time_to_target` reads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from benchmarks import digits_cnn
from tunefleet.common.timeline import mark

__all__ = [
    "EPOCHS",
    "EVENTS_ENV",
    "SPACE",
    "WORKLOADS",
    "Workload",
    "epochs",
    "optuna_study",
    "suggest",
    "timed_cnn_trainable",
    "timed_trainable",
]

EVENTS_ENV = "TUNEFLEET_BENCH_EVENTS"
EPOCHS = 20
SPACE: dict[str, Any] = {
    "lr": {"loguniform": [1.0e-4, 3.0e-2]},
    "batch_size": {"choice": [32, 64, 128]},
    "hidden": {"randint": [32, 256]},
    "dropout": {"uniform": [0.0, 0.5]},
    "weight_decay": {"loguniform": [1.0e-6, 1.0e-2]},
    "optimizer": {"choice": ["adam", "adamw", "sgd"]},
}


def _record(accuracy: float) -> None:
    path = os.environ.get(EVENTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short append: atomic enough
            f.write(f"{time.time():.6f} {accuracy:.6f}\n")
    mark("first_result")


def _timed_accuracy(outputs: Any, targets: Any) -> float:
    accuracy = float((outputs.argmax(dim=1) == targets).float().mean())
    _record(accuracy)
    return accuracy


def _timed_data() -> Any:
    from tunefleet.trainables.examples.digits import data

    loaded = data()
    mark("data_loaded")
    return loaded


def _timed_trainable(model: Callable[[dict[str, Any]], Any]) -> Any:
    from tunefleet.trainables.pytorch import TorchTrainable

    return TorchTrainable(
        model=model,
        data=_timed_data,
        metrics={"accuracy": _timed_accuracy},
        monitor="val_accuracy",
        monitor_mode="max",
    )


def _mlp(config: dict[str, Any]) -> Any:
    from tunefleet.trainables.examples.digits import mlp

    return mlp(config)


timed_trainable = _timed_trainable(_mlp)
timed_cnn_trainable = _timed_trainable(digits_cnn.cnn)


@dataclass(frozen=True)
class Workload:
    """A model, its search space (tunefleet's spec language), epochs and target accuracy."""

    name: str
    model: Callable[[dict[str, Any]], Any]
    space: dict[str, Any]
    epochs: int
    target: float
    trainable: str  # the timed TorchTrainable's name in this module


WORKLOADS = {
    "mlp": Workload("mlp", _mlp, SPACE, EPOCHS, 0.98, "timed_trainable"),
    "cnn": Workload(
        "cnn", digits_cnn.cnn, digits_cnn.SPACE, digits_cnn.EPOCHS, digits_cnn.TARGET,
        "timed_cnn_trainable",
    ),
}  # fmt: skip


def epochs(config: dict[str, Any], seed: int = 0, workload: str = "mlp") -> Iterator[float]:
    """A plain PyTorch loop, as an Optuna or Ray user writes it: validation accuracy per epoch."""
    import torch

    from tunefleet.trainables.examples.digits import splits

    work = WORKLOADS[workload]
    torch.manual_seed(seed)
    parts = splits()
    mark("data_loaded")
    x_train, y_train = (torch.from_numpy(a) for a in parts["train"])
    x_val, y_val = (torch.from_numpy(a) for a in parts["val"])
    model = work.model(config)
    lr, wd = float(config["lr"]), float(config["weight_decay"])
    optimizer: torch.optim.Optimizer
    if config["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    elif config["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = int(config["batch_size"])
    for _ in range(work.epochs):
        model.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(x_val).argmax(dim=1) == y_val).float().mean())
        _record(accuracy)
        yield accuracy


def suggest(trial: Any, name: str, spec: dict[str, list[Any]]) -> Any:
    """Optuna's suggestion for one parameter of the spec language (bounds inclusive)."""
    ((kind, args),) = spec.items()
    if kind == "loguniform":
        return trial.suggest_float(name, args[0], args[1], log=True)
    if kind == "uniform":
        return trial.suggest_float(name, args[0], args[1])
    if kind == "randint":
        return trial.suggest_int(name, args[0], args[1])
    return trial.suggest_categorical(name, args)


def optuna_study(seed: int) -> Any:
    """The standalone Optuna study of the `optuna` cases: TPE with Optuna's defaults but 8
    random start-up trials (multivariate, as Optuna 5 makes it for one objective; tunefleet's
    default too) seeded with `seed`, successive halving from 3 epochs by 3, maximizing."""
    import optuna

    return optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=8),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=3, reduction_factor=3),
    )
