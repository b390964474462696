"""The PyTorch wrapper's optimizer state: a restored trial trains with its own config."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from tests.support.specs import spec_dict
from tunefleet.trainables.torch_training import (
    TrainingSettings,
    load_optimizer_state,
    make_optimizer,
    make_schedule,
)

SCHEDULES = [
    {"lr_schedule": "none"},
    {"lr_schedule": "step", "lr_step_size": 2, "lr_gamma": 0.5},
    {"lr_schedule": "exponential"},
    {"lr_schedule": "cosine"},
    {"lr_schedule": "cosine_warm_restarts", "lr_restart_epochs": 3},
    {"lr_schedule": "cosine", "warmup_epochs": 2},
    {"lr_schedule": "step", "lr_step_size": 3, "warmup_epochs": 2},
]
EPOCHS = 10


def _build(config: dict[str, Any]) -> tuple[TrainingSettings, Any, Any]:
    settings = TrainingSettings.from_config({"epochs": EPOCHS, **config})
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(2))], settings)
    return settings, optimizer, make_schedule(optimizer, settings)


def _epochs(optimizer: Any, schedule: Any, n: int) -> list[float]:
    """The learning rate each of `n` epochs trains with (what the wrapper reports as `lr`)."""
    lrs = []
    for _ in range(n):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: only keeps the schedule's step order
        schedule.step()
    return lrs


def _checkpoint(config: dict[str, Any], epochs: int) -> dict[str, Any]:
    _, optimizer, schedule = _build(config)
    _epochs(optimizer, schedule, epochs)
    return copy.deepcopy({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()})


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: "-".join(map(str, s.values())))
@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "rmsprop"])
@pytest.mark.parametrize("done", [1, 4])
def test_a_pbt_exploit_trains_with_the_new_config_not_the_donors(
    schedule: dict[str, Any], optimizer: str, done: int
) -> None:
    donor = {**schedule, "optimizer": optimizer, "lr": 0.1, "weight_decay": 0.01, "momentum": 0.9}
    perturbed = {**donor, "lr": 0.02, "weight_decay": 0.001, "momentum": 0.5}
    state = _checkpoint(donor, done)

    settings, opt, sched = _build(perturbed)
    load_optimizer_state(opt, sched, state, settings)
    resumed = _epochs(opt, sched, EPOCHS - done)

    _, ref_opt, ref_sched = _build(perturbed)
    expected = _epochs(ref_opt, ref_sched, EPOCHS)[done:]
    assert resumed == pytest.approx(expected, rel=1e-12)
    for group in opt.param_groups:
        assert group["weight_decay"] == 0.001
        assert group["initial_lr"] == 0.02
        if optimizer != "adamw":
            assert group["momentum"] == 0.5
    for part in getattr(sched, "_schedulers", [sched]):  # warm-up: SequentialLR's parts
        assert part.base_lrs == [0.02]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: "-".join(map(str, s.values())))
def test_restoring_with_the_same_config_changes_nothing(schedule: dict[str, Any]) -> None:
    config = {**schedule, "optimizer": "sgd", "lr": 0.03, "weight_decay": 1e-4}
    state = _checkpoint(config, 3)

    settings, opt, sched = _build(config)
    load_optimizer_state(opt, sched, copy.deepcopy(state), settings)
    assert opt.state_dict()["param_groups"] == state["optimizer"]["param_groups"]
    resumed = _epochs(opt, sched, EPOCHS - 3)

    _, ref_opt, ref_sched = _build(config)
    assert resumed == _epochs(ref_opt, ref_sched, EPOCHS)[3:]  # exactly, not approximately


def test_checkpoints_follow_the_clock_unless_a_scheduler_restores_them() -> None:
    """Without `checkpoint_every`, a run of quick epochs saves once (at its last epoch);
    PBT and HyperBand, which continue trials from checkpoints, get one every epoch."""
    from tunefleet.experiments.spec.loading import validate_spec
    from tunefleet.experiments.spec.plan import make_plan

    def plan(**extra: Any) -> Any:
        digits = {
            "name": "ck",
            "trainable": "tunefleet.trainables.examples.digits:mlp_trainable",
            "metric": "val_accuracy",
            "space": {"lr": {"loguniform": [1e-3, 1e-2]}, "epochs": 4},
        }
        raw = spec_dict(**{**digits, **extra})
        return make_plan(validate_spec(raw), raw)

    def constant(p: Any) -> Any:
        param = p.spec.space.params.get("checkpoint_every")
        return None if param is None else param.value

    assert constant(plan()) is None
    assert constant(plan(scheduler={"name": "asha", "max_t": 4})) is None
    assert constant(plan(scheduler={"name": "hyperband", "max_t": 4})) == 1
    assert constant(plan(search={"algorithm": "pbt", "num_samples": 2})) == 1
    explicit = plan(
        search={"algorithm": "pbt", "num_samples": 2},
        space={"lr": {"loguniform": [1e-3, 1e-2]}, "epochs": 4, "checkpoint_every": 2},
    )
    assert constant(explicit) == 2


@pytest.mark.slow
def test_quick_epochs_save_one_checkpoint_by_default(ray_instance: None, tmp_path) -> None:
    from tunefleet.experiments.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: ck\ntrainable: tunefleet.trainables.examples.digits:mlp_trainable\n"
        "metric: val_accuracy\nmode: max\nspace: {hidden: 32, epochs: 4}\n"
        "search: {num_samples: 1}\nstop: {training_iteration: 4}\n"
    )
    assert main(["run", str(spec), "--storage", str(tmp_path / "results")]) == 0
    (trial,) = (tmp_path / "results" / "ck").glob("trial_*")
    assert len(list(trial.glob("checkpoint_*"))) == 1  # the last epoch's, not one per epoch
