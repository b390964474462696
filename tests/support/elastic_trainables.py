"""Trainables for the elastic-cluster tests: each step sleeps, checkpoints and reports the
wall time it began and ended, so that tests can see which trials ran at once and where."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from tunefleet.trainables import get_checkpoint, report


def paced(config: dict[str, Any]) -> None:
    """`steps` steps of `sleep` seconds, a checkpoint after each (a retried trial goes on
    from its last one); reports `score = x * step`, `began` and `ended` (Unix times)."""
    start = 0
    checkpoint = get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = int(Path(directory, "step").read_text())
    for step in range(start + 1, int(config["steps"]) + 1):
        began = time.time()
        time.sleep(float(config["sleep"]))
        metrics = {"score": float(config["x"]) * step, "began": began, "ended": time.time()}
        with tempfile.TemporaryDirectory() as directory:
            Path(directory, "step").write_text(str(step))
            report(metrics, checkpoint=directory)
