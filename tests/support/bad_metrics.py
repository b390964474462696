"""Trainables whose target metric (`score`) is unusable for some configs: NaN, infinite, or
never reported. Configs with `x <= 0.5` report a normal, finite score."""

from __future__ import annotations

import math
from typing import Any

from tunefleet.trainables import report


def _bad(config: dict[str, Any]) -> bool:
    return float(config["x"]) > 0.5


def nan_when_large(config: dict[str, Any]) -> None:
    """Reports `score = x * step`, or NaN at the last step when x > 0.5 (a diverged run)."""
    steps = int(config.get("steps", 2))
    for step in range(1, steps + 1):
        value = math.nan if _bad(config) and step == steps else float(config["x"]) * step
        report({"score": value, "loss": 1.0 / step})


def inf_when_large(config: dict[str, Any]) -> None:
    """Reports `score = x * step`, or +inf throughout when x > 0.5."""
    for step in range(1, int(config.get("steps", 2)) + 1):
        value = math.inf if _bad(config) else float(config["x"]) * step
        report({"score": value, "loss": 1.0 / step})


def silent_when_large(config: dict[str, Any]) -> None:
    """Reports `score = x * step`, or only `loss` (never `score`) when x > 0.5."""
    for step in range(1, int(config.get("steps", 2)) + 1):
        metrics = {"loss": 1.0 / step}
        if not _bad(config):
            metrics["score"] = float(config["x"]) * step
        report(metrics)
