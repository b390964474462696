"""Trials that really overlap: measured from the times the trials themselves report."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from tunefleet.trainables import report

__all__ = ["gathering", "most_at_once"]


def most_at_once(iterations: pd.DataFrame) -> int:
    """The most trials whose steps ran at the same moment, from the steps' own start and end
    times (`began`, `ended`; a trial's steps never overlap each other, so each open step is
    another trial)."""
    events = sorted(
        [(t, 1) for t in iterations["began"]] + [(t, -1) for t in iterations["ended"]],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def gathering(config: dict[str, Any]) -> None:
    """Marks its arrival in the folder `config["meet"]` and waits until `config["gather"]`
    trials have arrived (at most `config["wait_s"]`), then runs `steps` steps of `sleep`
    seconds, reporting `began` and `ended` of each. Trials let through together all wait for
    each other, however slowly their workers start, so they overlap; a trial held back by a
    cap never arrives, so the wait never makes an overlap on its own."""
    meet = Path(config["meet"])
    meet.mkdir(exist_ok=True)
    (meet / uuid.uuid4().hex).touch()
    deadline = time.time() + float(config["wait_s"])
    while len(list(meet.iterdir())) < int(config["gather"]) and time.time() < deadline:
        time.sleep(0.05)
    for step in range(1, int(config["steps"]) + 1):
        began = time.time()
        time.sleep(float(config["sleep"]))
        report({"score": float(config["x"]) * step, "began": began, "ended": time.time()})
