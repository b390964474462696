"""The GPU path, where a GPU is visible: what a GPU trial costs against the same loop in
plain PyTorch on the same GPU.

Rows (the digits MLP widened to `HIDDEN` units, `EPOCHS` epochs, batch 64):

- plain PyTorch: the training loop written by hand (Adam, cross-entropy, a validation pass
  per epoch), on `cuda:0`, no Ray;
- one trial on a GPU (`resources.gpu: 1`), AMP off and on (`amp: true`);
- two trials sharing a GPU (`resources.gpu: 0.5`, both at once);
- one 2-worker data-parallel trial (`resources: {workers: 2, gpu: 1}`, nccl) where 2 GPUs
  are visible.

Each tunefleet row is the median of its trials' per-epoch times (`time_this_iter_s`, the
first epoch left out: it holds CUDA's start-up), against the plain loop's median epoch.
Without a GPU it prints one line and measures nothing.

    python -m benchmarks gpu --repeats 1
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["markdown", "run"]

HIDDEN = 1024
EPOCHS = 6
DIGITS = "tunefleet.trainables.examples.digits:mlp_trainable"


def _plain_epochs(epochs: int) -> list[float]:
    """Per-epoch seconds of the same training written directly in PyTorch on `cuda:0`."""
    import torch
    from torch import nn

    from tunefleet.trainables.examples.digits import data, mlp

    device = torch.device("cuda:0")
    train_set, val_set = data()
    x, y = (t.to(device) for t in train_set.tensors)
    vx, vy = (t.to(device) for t in val_set.tensors)
    torch.manual_seed(0)
    model = mlp({"hidden": HIDDEN}).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        began = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), device=device)
        for start in range(0, len(x), 64):
            idx = order[start : start + 64]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            float((model(vx).argmax(1) == vy).float().mean())
        torch.cuda.synchronize()
        times.append(time.perf_counter() - began)
    return times


def _tunefleet_epochs(resources: dict[str, Any], trials: int, amp: bool) -> list[float]:
    """Per-epoch seconds of `trials` trials of a tunefleet run with these resources."""
    import pandas as pd

    import tunefleet

    spec = {
        "name": "gpu",
        "trainable": DIGITS,
        "metric": "val_accuracy",
        "mode": "max",
        "space": {"lr": 1e-3, "hidden": HIDDEN, "epochs": EPOCHS, "amp": amp},
        "search": {"algorithm": "random", "num_samples": trials, "seed": 0},
        "resources": resources,
    }
    with tempfile.TemporaryDirectory() as storage:
        tunefleet.run(spec, storage=storage)
        rows = pd.read_parquet(Path(storage, "gpu", "iterations.parquet"))
    later = rows[rows["training_iteration"] > 1]
    return [float(t) for t in later["time_this_iter_s"]]


def run(repeats: int = 1) -> dict[str, Any]:
    """The figures, or `skipped` with the reason when no GPU is visible."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == 0:
        return {"skipped": f"no GPU visible to torch {torch.__version__}; nothing measured"}
    cases: list[tuple[str, dict[str, Any], int, bool]] = [
        ("1 trial, 1 GPU", {"cpu": 1, "gpu": 1}, 1, False),
        ("1 trial, 1 GPU, amp", {"cpu": 1, "gpu": 1}, 1, True),
        ("2 trials sharing 1 GPU (0.5 each)", {"cpu": 1, "gpu": 0.5}, 2, False),
    ]
    if gpus >= 2:
        cases.append(("1 trial, 2 workers x 1 GPU", {"workers": 2, "cpu": 1, "gpu": 1}, 1, False))
    plain = statistics.median(t for _ in range(repeats) for t in _plain_epochs(EPOCHS)[1:])
    rows = []
    for label, resources, trials, amp in cases:
        epochs = [t for _ in range(repeats) for t in _tunefleet_epochs(resources, trials, amp)]
        epoch = statistics.median(epochs)
        rows.append({"case": label, "epoch_s": epoch, "ratio": epoch / plain})
    return {
        "gpu": torch.cuda.get_device_name(0),
        "gpus": gpus,
        "plain_epoch_s": plain,
        "rows": rows,
    }


def markdown(figures: dict[str, Any]) -> str:
    """The figures as a markdown table (or the one line saying why there are none)."""
    if "skipped" in figures:
        return f"skipped: {figures['skipped']}"
    lines = [
        f"{figures['gpus']} x {figures['gpu']}; plain PyTorch epoch "
        f"{figures['plain_epoch_s'] * 1000:.1f} ms (MLP, {HIDDEN} hidden units)",
        "",
        "| case | epoch (ms) | / plain PyTorch |",
        "| --- | --- | --- |",
    ]
    for row in figures["rows"]:
        lines.append(f"| {row['case']} | {row['epoch_s'] * 1000:.1f} | {row['ratio']:.2f}x |")
    return "\n".join(lines)
