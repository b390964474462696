"""A trainable for `tunefleet export` tests: run by plain Ray Tune, with its default loggers."""

from __future__ import annotations

from typing import Any

from ray import tune


def steps(config: dict[str, Any]) -> None:
    """Reports `score = x * step`, an int `count` and a nested `group/twice` for 3 steps;
    raises at step 2 when x > 0.8."""
    for step in range(1, 4):
        if step == 2 and config["x"] > 0.8:
            raise ValueError(f"x too large: {config['x']}")
        tune.report({"score": config["x"] * step, "count": step, "group": {"twice": 2 * step}})
