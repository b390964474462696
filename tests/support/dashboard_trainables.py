"""A trainable that a test holds open: it reports, then waits for its gate file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tunefleet.trainables import report


def gated(config: dict[str, Any]) -> None:
    """Reports `score = x * step` and `loss = 1 / step` for `steps` iterations, then waits
    (at most `wait_s` seconds) until the file `<gate>/<x>` exists before it ends, so that a
    test decides when each trial finishes."""
    x = float(config["x"])
    for step in range(1, int(config["steps"]) + 1):
        report({"score": x * step, "loss": 1.0 / step})
    gate = Path(config["gate"]) / str(config["x"])
    deadline = time.monotonic() + float(config.get("wait_s", 300))
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
