"""A Ray `Searcher` that delegates to another, the base of tunefleet's searcher wrappers,
`FiniteTarget`, which keeps unusable metric values (NaN, inf, missing) from searchers, and
`NoSearch`, the searcher of a space of constants."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Mapping
from typing import Any

from ray.tune.search import Searcher

__all__ = ["DelegatingSearcher", "FiniteTarget", "NoSearch", "target_problem"]


class DelegatingSearcher(Searcher):
    """Passes every call to `self.searcher`; subclasses change the calls they care about.

    Args:
        searcher: The wrapped searcher (HyperOptSearch, OptunaSearch, another wrapper).
    """

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    @property
    def metric(self) -> Any:
        """The wrapped searcher's metric (set by Ray through `set_search_properties`)."""
        return self.searcher.metric

    @property
    def mode(self) -> Any:
        """The wrapped searcher's mode."""
        return self.searcher.mode

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        self.searcher.add_evaluated_point(parameters, value, error, pruned, intermediate_values)

    def get_state(self) -> dict[str, Any]:
        """This wrapper's own state. Ray walks the chain of `.searcher` attributes when it
        saves an experiment and saves the innermost searcher itself (as ConcurrencyLimiter
        does), so the wrapped searcher's state is not included here."""
        state = self.__dict__.copy()
        del state["searcher"]
        return copy.deepcopy(state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


def target_problem(result: Mapping[str, Any] | None, metric: str | list[str] | None) -> str | None:
    """Why `result` (a flat Ray result) gives no usable value of the target metric, or None.

    Args:
        result: The trial's result, nested metrics flattened with `/`.
        metric: The target metric (or metrics, multi-objective).

    Returns:
        `score was never reported`, `score is nan`, `score is inf`, `score is not a number
        ('high')`; None when every target metric is a finite number.
    """
    if metric is None:
        return None
    for name in [metric] if isinstance(metric, str) else metric:
        value = (result or {}).get(name)
        if value is None:
            return f"{name} was never reported"
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"{name} is not a number ({value!r})"
        if isinstance(value, bool):
            return f"{name} is not a number ({value!r})"
        if not math.isfinite(number):
            return f"{name} is {number}"
    return None


class FiniteTarget(DelegatingSearcher):
    """Reports a trial whose target metric is NaN, infinite or missing as failed.

    Ray hands such values to the searcher as they are: Optuna refuses a NaN (Ray logs a
    warning and the Optuna trial stays running for ever) and takes an infinite value as a
    real, possibly best, one; Hyperopt takes either as a loss, and a missing metric makes it
    raise. Wrapped, the searcher is told the trial failed (`error=True`, no result), which
    both leave out of their model; intermediate results without a usable value are not
    passed on.
    """

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if target_problem(result, self.metric) is None:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if target_problem(result, self.metric) is not None:
            result, error = None, True
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        if not error and not math.isfinite(value):
            value, error = 0.0, True
        self.searcher.add_evaluated_point(parameters, value, error, pruned, intermediate_values)


class NoSearch(Searcher):
    """The searcher of a space of constants: every suggestion is `{}`, and the Tuner's
    `param_space` gives each trial the constants.

    Ray's `Repeater` (`search.repeat`: one config run with several seeds) needs a searcher
    to wrap, and Optuna's and Hyperopt's refuse a space with nothing to sample.
    """

    def __init__(self, metric: str | None = None, mode: str | None = None) -> None:
        super().__init__()
        self._target: tuple[str | None, str | None] = (metric, mode)

    @property
    def metric(self) -> Any:
        """The target metric Ray set (kept here, not in Ray's private fields)."""
        return self._target[0]

    @property
    def mode(self) -> Any:
        """`min` or `max`, as Ray set it."""
        return self._target[1]

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        self._target = (metric or self._target[0], mode or self._target[1])
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return {}

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Nothing to learn from."""

    def add_evaluated_point(
        self,
        parameters: dict[str, Any],
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        """Nothing to learn from."""

    def get_state(self) -> dict[str, Any]:
        return {"metric": self._target[0], "mode": self._target[1]}

    def set_state(self, state: dict[str, Any]) -> None:
        self._target = (state["metric"], state["mode"])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))
