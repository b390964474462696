"""Translation of a tunefleet `Space` into Ray Tune's `param_space`.

This is the one place that knows Ray's domain constructors and their bound conventions:
`tune.randint` and `tune.lograndint` exclude their upper bound, while tunefleet's integer
bounds are inclusive; `tune.qrandint` includes it except for `q=1`.

Normal parameters are Ray's own `tune.randn` / `tune.qrandn`. Ray has no log-normal domain,
so `lognormal` is Ray's `Float` domain (positive, unbounded above) with a sampler that draws
`exp(x)`, `x` normal, from the random state Ray hands it (so seeded random search stays
reproducible); `qlognormal` is that domain quantized by Ray. A Ray domain, unlike
`tune.sample_from`, is a plain picklable object that searchers can inspect and convert
(`tunefleet.search.hyperopt_search` gives it to Hyperopt as `hp.lognormal`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from ray import tune
from ray.tune.search.sample import Domain, Float, Quantized, Sampler

from tunefleet.common.nesting import set_path
from tunefleet.search.space import Choice, Conditional, Const, Int, Normal, Param, Space
from tunefleet.search.space import Float as FloatParam

__all__ = [
    "LogNormalSampler",
    "lognormal_domain",
    "lognormal_sampler",
    "to_tune_domain",
    "to_tune_param_space",
]


class LogNormalSampler(Sampler):
    """Ray Tune sampler of `exp(x)` for `x` drawn from N(mu, sigma²).

    Args:
        mu: The mean of the value's logarithm.
        sigma: The standard deviation of the value's logarithm.
    """

    def __init__(self, *, mu: float, sigma: float) -> None:
        self.mu = mu
        self.sigma = sigma

    def sample(
        self,
        domain: Domain,
        config: Any = None,
        size: int = 1,
        random_state: Any = None,
    ) -> Any:
        """Draws `size` values, as Ray's own samplers do (an array, or one cast value)."""
        if random_state is None:
            rng: Any = np.random
        elif isinstance(random_state, int):
            rng = np.random.default_rng(random_state)
        else:  # numpy's RandomState or Generator, or Ray's wrapper of either
            rng = random_state
        items = np.exp(rng.normal(self.mu, self.sigma, size=size))
        return items if len(items) > 1 else domain.cast(items[0])

    def __str__(self) -> str:
        return "LogNormal"


def lognormal_domain(mu: float, sigma: float, q: float | None = None) -> Float:
    """Ray's `Float` domain over (0, inf) drawing `exp(N(mu, sigma²))`, quantized by `q`."""
    domain = Float(0.0, None)
    domain.set_sampler(LogNormalSampler(mu=mu, sigma=sigma))
    return domain.quantized(q) if q is not None else domain


def lognormal_sampler(domain: Any) -> tuple[LogNormalSampler, float | None] | None:
    """The log-normal sampler of a domain made by `lognormal_domain`, and its step `q`;
    None for any other value."""
    if not isinstance(domain, Float):
        return None
    sampler, q = domain.get_sampler(), None
    if isinstance(sampler, Quantized):
        sampler, q = sampler.get_sampler(), sampler.q
    return (sampler, q) if isinstance(sampler, LogNormalSampler) else None


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
    if isinstance(param, Normal):
        if param.log:
            return lognormal_domain(param.mu, param.sigma, param.q)
        if param.q is not None:
            return tune.qrandn(param.mu, param.sigma, param.q)
        return tune.randn(param.mu, param.sigma)
    if isinstance(param, FloatParam):
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
