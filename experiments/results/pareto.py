"""The Pareto front of a multi-objective experiment: which finished trials no other beats.

A trial dominates another when it is at least as good on every objective and better on one.
The front is computed from each finished trial's final reported values (the same values the
Optuna searcher was told), by comparing every pair: experiments hold hundreds of trials, not
millions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["mark_pareto", "pareto_mask"]


def pareto_mask(points: Sequence[Sequence[float] | None], modes: Sequence[str]) -> list[bool]:
    """Whether each point is non-dominated among the others.

    Args:
        points: One value per objective for each point; None for a point that has no usable
            values (it is never on the front and dominates nothing).
        modes: `min` or `max` per objective.

    Returns:
        One flag per point. Equal points do not dominate each other.
    """
    signs = [1.0 if mode == "min" else -1.0 for mode in modes]
    costs = [None if p is None else [s * v for s, v in zip(signs, p, strict=True)] for p in points]
    mask = []
    for i, a in enumerate(costs):
        if a is None:
            mask.append(False)
            continue
        dominated = any(
            b is not None
            and all(y <= x for x, y in zip(a, b, strict=True))
            and any(y < x for x, y in zip(a, b, strict=True))
            for j, b in enumerate(costs)
            if j != i
        )
        mask.append(not dominated)
    return mask


def mark_pareto(rows: list[dict[str, Any]], objectives: Sequence[tuple[str, str]]) -> None:
    """Sets `row["pareto"]` for each trial row: True for the finished (`TERMINATED`) trials
    whose final values of every objective are finite and that no such trial dominates.

    Args:
        rows: Rows of `trials.parquet` (status and last reported metric values).
        objectives: (metric, mode) pairs.
    """
    points: list[list[float] | None] = []
    for row in rows:
        values = [row.get(metric) for metric, _ in objectives]
        usable = row.get("status") == "TERMINATED" and all(_finite(v) for v in values)
        points.append([float(v) for v in values if v is not None] if usable else None)
    for row, flag in zip(rows, pareto_mask(points, [m for _, m in objectives]), strict=True):
        row["pareto"] = flag


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value)
