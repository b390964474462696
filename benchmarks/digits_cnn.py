"""A small CNN on scikit-learn's digits: the long time-to-target workload.

Two 3x3 convolutions (`channels`, then twice as many), a 2x2 max-pool, dropout and a hidden
layer of `hidden` units, on the 8x8 images of `tunefleet.trainables.examples.digits` (same
split). An epoch costs about 0.1 s of one CPU here, 3 to 6 times an MLP epoch, and the best
configs reach 0.99 validation accuracy, which standalone Optuna (TPE, successive halving)
took about 550 epochs to find in a calibration run (trial 51): a workload where Optuna needs
a minute or more, so that what a tuning run does per trial (parallel trials, early stopping,
reused workers) matters more than its start-up.
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["EPOCHS", "SPACE", "TARGET", "cnn"]

EPOCHS = 30
TARGET = 0.99
SPACE: dict[str, Any] = {
    "lr": {"loguniform": [1.0e-4, 1.0e-2]},
    "batch_size": {"choice": [32, 64, 128]},
    "channels": {"randint": [8, 32]},
    "hidden": {"randint": [32, 256]},
    "dropout": {"uniform": [0.0, 0.5]},
    "weight_decay": {"loguniform": [1.0e-6, 1.0e-2]},
    "optimizer": {"choice": ["adam", "adamw", "sgd"]},
}


def cnn(config: dict[str, Any]) -> nn.Module:
    """The CNN for `config` (`channels`, `hidden`, `dropout`) on flat 64-pixel inputs."""
    c1 = int(config.get("channels", 16))
    c2, hidden = 2 * c1, int(config.get("hidden", 128))
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, c1, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(float(config.get("dropout", 0.0))),
        nn.Linear(c2 * 16, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )
