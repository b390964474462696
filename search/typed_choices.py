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

from tunefleet.search.space import Choice, Space

__all__ = ["DecodeChoices", "encoded_choices"]

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


def _get(config: dict[str, Any], path: str) -> tuple[dict[str, Any], str] | None:
    *groups, name = path.split("/")
    node = config
    for group in groups:
        node = node.get(group)  # type: ignore[assignment]
        if not isinstance(node, dict):
            return None
    return (node, name) if name in node else None


class DecodeChoices(Searcher):
    """Wraps a searcher whose space holds index choices; decodes its suggestions.

    Args:
        searcher: The backend searcher (HyperOptSearch, OptunaSearch, ...).
        choices: Flat parameter path -> the values of its choice, in order.
    """

    def __init__(self, searcher: Searcher, choices: dict[str, tuple[Any, ...]]) -> None:
        self.searcher = searcher
        self.choices = choices
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        ok = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return ok

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        suggestion = self.searcher.suggest(trial_id)
        if not isinstance(suggestion, dict):
            return suggestion  # None or Searcher.FINISHED
        decoded = copy.deepcopy(suggestion)
        for path, values in self.choices.items():
            found = _get(decoded, path)
            if found is not None:
                node, name = found
                node[name] = copy.deepcopy(values[int(node[name])])
        return decoded

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def add_evaluated_point(self, *args: Any, **kwargs: Any) -> None:
        self.searcher.add_evaluated_point(*args, **kwargs)

    def get_state(self) -> dict[str, Any]:
        return self.searcher.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.searcher.set_state(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


def encode_point(point: dict[str, Any], choices: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    """A nested `points_to_evaluate` entry with encoded choices replaced by their index."""
    encoded = copy.deepcopy(point)
    for path, values in choices.items():
        found = _get(encoded, path)
        if found is not None:
            node, name = found
            node[name] = next(i for i, v in enumerate(values) if v == node[name])
    return encoded
