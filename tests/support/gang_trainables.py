"""Trainables for the data-parallel tests: they run on every worker of a gang."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from tunefleet.trainables.api import get_checkpoint, report, worker_rank, world_size
from tunefleet.trainables.data_parallel import prepare_model, shard

SAMPLES = 96


def regression(config: dict[str, Any]) -> None:
    """A plain function trained data-parallel with the helpers: a linear model on a fixed
    regression set, a checkpoint every step. With `kill_marker`, rank 1 kills its own
    process in step `kill_at`, once Tune holds a checkpoint of the trial (under the
    `results` folder), and only once (the marker file records that it did)."""
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, SAMPLES).unsqueeze(1)
    data = shard(TensorDataset(x, 3 * x + 1, torch.arange(SAMPLES)))
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(config["lr"]))
    start = 0
    restored = None
    if (checkpoint := get_checkpoint()) is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder, "state.pt"), weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restored = state["step"]
        start = restored + 1
    trained = prepare_model(model)
    inputs, targets, indices = data.tensors
    marker = config.get("kill_marker")
    for step in range(start, int(config["steps"])):
        if marker and step == config["kill_at"] and worker_rank() == 1:
            _kill_once(marker, config["results"])
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(trained(inputs), targets)
        loss.backward()
        optimizer.step()
        own = {
            "samples": len(indices),
            "first_index": int(indices[0]),
            "weight": float(model.weight.detach().item()),
            "size": world_size(),
        }
        if restored is not None:
            own["restored_step"], restored = restored, None
        metrics = {"loss": float(loss.item()), "step": step, "worker": own}
        if worker_rank() == 0:
            with tempfile.TemporaryDirectory() as folder:
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
                torch.save({**state, "step": step}, Path(folder, "state.pt"))
                report(metrics, checkpoint=folder)
        else:
            report(metrics)


def _kill_once(marker: str, results: str) -> None:
    if Path(marker).exists():
        return
    deadline = time.monotonic() + 120
    while not list(Path(results).glob("*/trial_*/checkpoint_*")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no checkpoint under {results} to retry from")
        time.sleep(0.05)
    Path(marker).touch()
    os.kill(os.getpid(), signal.SIGKILL)
