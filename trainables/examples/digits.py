"""A PyTorch MLP on scikit-learn's bundled digits (8x8 images, 10 classes, 1,797 samples).

The split is fixed and seeded: 60% train, 20% validation, 20% test. The search sees only
train and validation (`data`); the test split is for a final evaluation (`held_out_test`).
Features are standardized with statistics of the training split alone.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tunefleet.trainables.pytorch import TorchTrainable

__all__ = ["data", "held_out_test", "mlp", "mlp_trainable", "splits"]

SPLIT_SEED = 0


@cache
def splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fixed train / val / test split as float32 features and int64 labels."""
    # scikit-learn (seconds to import) loads where the data does, on the driver: the trial
    # workers get the datasets through Ray's object store and need only the model.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.2, random_state=SPLIT_SEED, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.25, random_state=SPLIT_SEED, stratify=y_rest
    )
    scaler = StandardScaler().fit(x_train)  # constant pixels keep scale 1, not 1/eps
    parts = {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}
    return {
        k: (scaler.transform(xs).astype(np.float32), ys.astype(np.int64))
        for k, (xs, ys) in parts.items()
    }


def _dataset(part: str) -> TensorDataset:
    xs, ys = splits()[part]
    return TensorDataset(torch.from_numpy(xs), torch.from_numpy(ys))


def data() -> tuple[TensorDataset, TensorDataset]:
    """Train and validation datasets: all the search may see."""
    return _dataset("train"), _dataset("val")


def held_out_test() -> TensorDataset:
    """The held-out test split, for final evaluation only."""
    return _dataset("test")


def mlp(config: dict[str, Any]) -> nn.Module:
    """An MLP: `layers` hidden layers of `hidden` units with ReLU and `dropout`."""
    hidden = int(config.get("hidden", 128))
    layers: list[nn.Module] = []
    width = 64
    for _ in range(int(config.get("layers", 1))):
        layers += [
            nn.Linear(width, hidden),
            nn.ReLU(),
            nn.Dropout(float(config.get("dropout", 0.0))),
        ]
        width = hidden
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


mlp_trainable = TorchTrainable(
    model=mlp,
    data=data,
    metrics=("accuracy",),
    monitor="val_accuracy",
    monitor_mode="max",
    test=held_out_test,
)
