"""`TorchTrainable`'s loop in mixed precision (`amp: true`) and with DataLoader workers
(`num_workers`), on the digits MLP: each option really takes effect, and training still
learns."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from tunefleet.trainables.examples.digits import data, mlp
from tunefleet.trainables.torch_training import LOSSES, METRICS, Training, TrainingSettings


def _training(config: dict[str, Any], train_set: Any = None, val_set: Any = None) -> Training:
    default_train, default_val = data()
    settings = TrainingSettings.from_config({"lr": 1e-2, "hidden": 64, **config})
    return Training.start(
        settings,
        build_model=lambda: mlp({"hidden": 64}),
        loss_fn=LOSSES["cross_entropy"](),
        metric_fns={"accuracy": METRICS["accuracy"]},
        train_set=train_set or default_train,
        val_set=val_set or default_val,
        monitor_mode="min",
        device=torch.device("cpu"),
    )


def _output_dtypes(training: Training) -> set[torch.dtype]:
    """The dtypes of the model's outputs during one training epoch."""
    seen: set[torch.dtype] = set()
    hook = training.model.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    training.train_epoch()
    hook.remove()
    return seen


def test_amp_trains_in_bfloat16_on_the_cpu_and_still_learns() -> None:
    mixed = _training({"amp": True})
    assert _output_dtypes(mixed) == {torch.bfloat16}
    for _ in range(4):
        mixed.train_epoch()
    assert mixed.score()["val_accuracy"] > 0.9
    # The loss scale is for float16 on a GPU: off here, and saved with the checkpoint.
    assert not mixed.precision.scaler.is_enabled()
    assert "scaler" in mixed.state()
    assert _output_dtypes(_training({})) == {torch.float32}


class PidRecordingDigits(Dataset[Any]):
    """The digits training split as a plain Dataset, marking which process loads each
    sample (a file per process id in `folder`)."""

    def __init__(self, folder: Path) -> None:
        self.tensors = data()[0].tensors
        self.folder = folder

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        (self.folder / str(os.getpid())).touch()
        return self.tensors[0][index], self.tensors[1][index]


def test_num_workers_loads_a_datasets_batches_in_worker_processes(tmp_path: Path) -> None:
    training = _training({"num_workers": 2, "epochs": 3}, train_set=PidRecordingDigits(tmp_path))
    for _ in range(3):
        training.train_epoch()
    loaders = {int(p.name) for p in tmp_path.iterdir()}
    assert loaders and os.getpid() not in loaders, loaders
    assert training.score()["val_accuracy"] > 0.9
    # Without workers the trial's own process loads them.
    (tmp_path / "main").mkdir()
    _training({}, train_set=PidRecordingDigits(tmp_path / "main")).train_epoch()
    assert {p.name for p in (tmp_path / "main").iterdir()} == {str(os.getpid())}
