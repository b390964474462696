"""Synthetic objectives with known minima, for measuring searchers."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BRANIN", "FUNCTIONS", "HARTMANN6", "Objective"]


@dataclass(frozen=True)
class Objective:
    """A function to minimize over a tunefleet space, with its known minimum."""

    name: str
    space: Mapping[str, Any]
    minimum: float
    fn: Callable[[Mapping[str, Any]], float]

    def __call__(self, config: Mapping[str, Any]) -> float:
        return self.fn(config)


def _branin(c: Mapping[str, Any]) -> float:
    x1, x2 = float(c["x1"]), float(c["x2"])
    b, cc, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + cc * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def _hartmann6(c: Mapping[str, Any]) -> float:
    x = np.array([float(c[f"x{i}"]) for i in range(1, 7)])
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


BRANIN = Objective(
    "branin",
    {"x1": {"uniform": [-5.0, 10.0]}, "x2": {"uniform": [0.0, 15.0]}},
    0.397887,
    _branin,
)
HARTMANN6 = Objective(
    "hartmann6",
    {f"x{i}": {"uniform": [0.0, 1.0]} for i in range(1, 7)},
    -3.32237,
    _hartmann6,
)
FUNCTIONS = {f.name: f for f in (BRANIN, HARTMANN6)}
