"""Keeps `choice` values' types through Hyperopt and Optuna.

Both backends hand back a tuple where the space offered a list, and Optuna cannot hold a
dict as a categorical value. For choices with such values, the backend is given the indices
(`choice: [0, 1]`) and `DecodeChoices` turns each suggested index back into the value,
so the trainable receives exactly what the spec wrote.
"""

from __future__ import annotations

import copy
from typing import Any

from ray.tune.search import Searcher

from tunefleet.common.nesting import find_path
from tunefleet.search.searcher_wrappers import DelegatingSearcher
from tunefleet.search.space import Choice, Space

__all__ = ["DecodeChoices", "encode_point", "encoded_choices"]

_PRIMITIVE = (str, int, float, bool, type(None))


def encoded_choices(space: Space) -> dict[str, tuple[Any, ...]]:
    """The (non-grid) choices whose values a backend would not return as written."""
    return {
        path: param.values
        for path, param in space.params.items()
        if isinstance(param, Choice)
        and not param.grid
        and not all(isinstance(v, _PRIMITIVE) for v in param.values)
    }


class DecodeChoices(DelegatingSearcher):
    """Wraps a searcher whose space holds index choices; decodes its suggestions.

    Args:
        searcher: The backend searcher (HyperOptSearch, OptunaSearch, ...).
        choices: Flat parameter path -> the values of its choice, in order.
    """

    def __init__(self, searcher: Searcher, choices: dict[str, tuple[Any, ...]]) -> None:
        super().__init__(searcher)
        self.choices = choices

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        suggestion = self.searcher.suggest(trial_id)
        if not isinstance(suggestion, dict):
            return suggestion  # None or Searcher.FINISHED
        decoded = copy.deepcopy(suggestion)
        for path, values in self.choices.items():
            found = find_path(decoded, path)
            if found is not None:
                node, name = found
                node[name] = copy.deepcopy(values[int(node[name])])
        return decoded

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        encoded = encode_point(parameters, self.choices)
        self.searcher.add_evaluated_point(encoded, value, error, pruned, intermediate_values)


def encode_point(point: dict[str, Any], choices: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    """A nested `points_to_evaluate` entry with encoded choices replaced by their index."""
    encoded = copy.deepcopy(point)
    for path, values in choices.items():
        found = find_path(encoded, path)
        if found is not None:
            node, name = found
            node[name] = next(i for i, v in enumerate(values) if v == node[name])
    return encoded
