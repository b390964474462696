"""Final evaluation for the PyTorch wrapper: retrain a config with a new seed, score it on
the validation and the held-out test split.

The held-out protocol of tunefleet's wrappers (`TorchTrainable`, `SklearnTrainable`):

- the search sees only the training and validation data (`data()`), never the test split;
- `wrapper.has_test` says whether a test split is configured;
- `wrapper.evaluate(config, seed=s, cpus=c)` trains the config once with seed `s` and returns
  `val_<name>` and `test_<name>` for every score it computes;
- `wrapper.held_out_metric(metric)` names the `<name>` that matches the search's metric.

The PyTorch wrapper trains on the training split as the search did (the same epochs, the
same loop, early stopping by `patience` on the validation split included) and scores the
final model on both splits, so the validation-to-test gap measures how much choosing the
config by its validation score flattered it. (Retraining on train + validation would leave
no validation score to compare with.) The scikit-learn wrapper cross-validates the config on
the search rows, as the search did (`val_score`), refits it on all of them and scores the
held-out rows (`test_score`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunefleet.trainables.pytorch import TorchTrainable
    from tunefleet.trainables.sklearn import SklearnTrainable

__all__ = ["evaluate_sklearn", "evaluate_torch"]


def evaluate_torch(
    wrapper: TorchTrainable, config: dict[str, Any], *, seed: int, cpus: int = 1
) -> dict[str, float]:
    """Trains `config` with `seed` on the training split; returns validation and test scores.

    Args:
        wrapper: The PyTorch wrapper (with a `test` split).
        config: A trial config from the search.
        seed: Replaces the config's seed (torch, numpy, random and batch order).
        cpus: torch's thread count.

    Returns:
        `val_loss`, `test_loss`, `val_<metric>` and `test_<metric>` for each metric, and
        `epochs` (how many ran).
    """
    import torch

    from tunefleet.trainables.pytorch import (
        _Batches,
        _evaluate,
        _make_optimizer,
        _make_schedule,
        _seed_everything,
        _Settings,
        _train_step,
    )

    if wrapper.test is None:
        raise ValueError("this TorchTrainable has no `test` split to evaluate on.")
    config = {**wrapper.defaults, **config, "seed": seed}
    config.pop("__trial_index__", None)
    s = _Settings.from_config(config)
    torch.set_num_threads(max(1, cpus))
    train_set, val_set = wrapper.data()
    test_set = wrapper.test()
    generator = _seed_everything(s.seed)
    model = wrapper.model(config)
    optimizer = _make_optimizer(model.parameters(), s)
    schedule = _make_schedule(optimizer, s)
    loss_fn, metric_fns = wrapper.loss_fn(), wrapper.metric_fns()
    train_batches = _Batches(train_set, s.batch_size, generator)
    val_batches = _Batches(val_set, max(s.batch_size, 1024), generator)
    sign = 1.0 if wrapper.monitor_mode == "min" else -1.0
    best, bad_epochs, epochs = math.inf, 0, 0
    for _ in range(s.epochs):
        model.train()
        for inputs, target in train_batches(shuffle=True):
            _train_step(model, optimizer, loss_fn, inputs, target, s.grad_clip)
        schedule.step()
        epochs += 1
        if s.patience is None:
            continue
        watched = _evaluate(model, val_batches, loss_fn, metric_fns, torch.device("cpu"))
        value = watched.get(wrapper.monitor)
        if value is not None and sign * value < best:
            best, bad_epochs = sign * value, 0
        else:
            bad_epochs += 1
        if bad_epochs >= s.patience:
            break
    cpu = torch.device("cpu")
    val = _evaluate(model, val_batches, loss_fn, metric_fns, cpu)
    test = _evaluate(model, _Batches(test_set, 1024, generator), loss_fn, metric_fns, cpu)
    scores = {**val, **{"test_" + k.removeprefix("val_"): v for k, v in test.items()}}
    scores["epochs"] = float(epochs)
    return scores


def evaluate_sklearn(
    wrapper: SklearnTrainable, config: dict[str, Any], *, seed: int, cpus: int = 1
) -> dict[str, float]:
    """Cross-validates `config` with `seed` on the search rows (`val_score`: the mean over the
    search's folds), refits it on all of them and scores the held-out rows (`test_score`).

    Raises:
        TrainableError: If the wrapper has no `test_size`.
    """
    import numpy as np
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import cross_val_score
    from threadpoolctl import threadpool_limits

    from tunefleet.trainables.resolve import TrainableError
    from tunefleet.trainables.sklearn import REPEAT_INDEX

    if wrapper.test_size is None:
        raise TrainableError("test_size: not set, so there is no test split to evaluate on.")
    config = {k: v for k, v in config.items() if k != REPEAT_INDEX}
    config["random_state" if "random_state" in config else "seed"] = seed
    x, y, x_test, y_test = wrapper.split()
    model = wrapper.build(config, cpus=cpus)
    with threadpool_limits(limits=cpus):
        folds = wrapper.folds(model)
        val = cross_val_score(model, x, y, cv=folds, scoring=wrapper.scoring, n_jobs=1)
        model.fit(x, y)
        test = check_scoring(model, scoring=wrapper.scoring)(model, x_test, y_test)
    return {"val_score": float(np.mean(val)), "test_score": float(test)}
