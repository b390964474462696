"""Translation of a tunefleet `Space` into Ray Tune's `param_space`.

This is the one place that knows Ray's domain constructors and their bound conventions:
`tune.randint` and `tune.lograndint` exclude their upper bound, while tunefleet's integer
bounds are inclusive; `tune.qrandint` includes it except for `q=1`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ray import tune

from tunefleet.common.nesting import set_path
from tunefleet.search.space import Choice, Conditional, Const, Float, Int, Param, Space

__all__ = ["to_tune_domain", "to_tune_param_space"]


def to_tune_domain(param: Param, *, by_index: bool = False) -> Any:
    """Returns Ray Tune's domain (or the constant) for one parameter.

    Args:
        param: The parameter.
        by_index: For a choice, offer the indices of its values instead (see
            `tunefleet.search.typed_choices`).
    """
    if isinstance(param, Const):
        return param.value
    if isinstance(param, Conditional):
        raise TypeError(
            "a conditional choice has no single Ray Tune domain; translate its space with "
            "tunefleet.search.conditional."
        )
    if isinstance(param, Choice):
        values = list(range(len(param.values))) if by_index else list(param.values)
        return tune.grid_search(values) if param.grid else tune.choice(values)
    if isinstance(param, Float):
        if param.q is not None:
            if param.log:
                return tune.qloguniform(param.low, param.high, param.q)
            return tune.quniform(param.low, param.high, param.q)
        if param.log:
            return tune.loguniform(param.low, param.high)
        return tune.uniform(param.low, param.high)
    if isinstance(param, Int):
        if param.log:
            return tune.lograndint(param.low, param.high + 1)
        if param.q is not None and param.q > 1:
            return tune.qrandint(param.low, param.high, param.q)
        return tune.randint(param.low, param.high + 1)
    raise TypeError(f"not a search-space parameter: {param!r}")


def to_tune_param_space(space: Space, *, by_index: Iterable[str] = ()) -> dict[str, Any]:
    """Returns the nested `param_space` dict that `tune.Tuner` takes.

    Args:
        space: The parsed space.
        by_index: Flat paths of choices to offer as indices of their values.
    """
    indexed = set(by_index)
    nested: dict[str, Any] = {}
    for path, param in space.params.items():
        set_path(nested, path, to_tune_domain(param, by_index=path in indexed))
    return nested
