"""Warm-starting a searcher with results it did not suggest (`tunefleet resume --extend`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Searcher

from tunefleet.search.searcher_wrappers import DelegatingSearcher

__all__ = ["EvaluatedPoint", "WarmStart"]


@dataclass(frozen=True)
class EvaluatedPoint:
    """A config evaluated earlier and its final value of the target metric."""

    config: dict[str, Any]
    value: float | None
    error: bool = False


class WarmStart(DelegatingSearcher):
    """Feeds earlier results to the searcher (Ray's `add_evaluated_point`) as soon as it
    knows its space, so its first suggestions already build on them.

    Args:
        searcher: A searcher supporting `add_evaluated_point` (Optuna, Hyperopt).
        points: The earlier configs (nested, as trials received them) and values.
    """

    def __init__(self, searcher: Searcher, points: Sequence[EvaluatedPoint]) -> None:
        super().__init__(searcher)
        self.points = list(points)
        self._fed = False

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        ok = super().set_search_properties(metric, mode, config, **spec)
        if ok and not self._fed:
            for point in self.points:
                failed = point.error or point.value is None
                value = 0.0 if point.value is None else point.value
                self.searcher.add_evaluated_point(point.config, value, error=failed)
            self._fed = True
        return ok
