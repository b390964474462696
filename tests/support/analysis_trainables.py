"""Trainables for the analysis tests: the metric follows from `x` alone, by a known formula."""

from __future__ import annotations

from typing import Any

from tunefleet.trainables import report


def influence_score(config: dict[str, Any], step: int) -> float:
    """What `influence` reports at iteration `step`: `10 * x + 0.1 * step`."""
    return 10.0 * float(config["x"]) + 0.1 * step


def influence(config: dict[str, Any]) -> None:
    """Reports `score = 10 * x + 0.1 * step` for `steps` iterations; every other parameter
    (`noise_param`, `lr`, `opt`) is ignored. Raises at iteration 2 when `x > fail_above`."""
    for step in range(1, int(config.get("steps", 4)) + 1):
        if step == 2 and float(config["x"]) > float(config.get("fail_above", 1.0)):
            raise ValueError(f"x above fail_above: {config['x']}")
        report({"score": influence_score(config, step), "loss": 1.0 / step})
