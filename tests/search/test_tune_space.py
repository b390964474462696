"""Translation to Ray Tune's domains: types, scales and the inclusive integer bounds."""

from __future__ import annotations

import random

import numpy as np
from ray.tune.search.sample import Categorical, Float, Integer, LogUniform, Quantized

from tunefleet.search import parse_space
from tunefleet.search.tune_space import to_tune_param_space


def _sample(domain, n: int = 2000) -> list:
    random.seed(0)
    np.random.seed(0)
    return [domain.sample() for _ in range(n)]


def test_integer_bounds_are_inclusive_at_both_ends_in_ray() -> None:
    space = to_tune_param_space(
        parse_space({"n": {"randint": [1, 3]}, "m": {"lograndint": [1, 4]}})
    )
    n_values, m_values = set(_sample(space["n"])), set(_sample(space["m"]))
    assert n_values == {1, 2, 3}  # Ray's randint excludes its upper bound; ours does not
    assert m_values == {1, 2, 3, 4}
    assert isinstance(space["n"], Integer)
    assert (space["n"].lower, space["n"].upper) == (1, 4)


def test_quantized_integers_include_the_upper_bound() -> None:
    space = to_tune_param_space(parse_space({"n": {"qrandint": [0, 20, 10]}}))
    assert set(_sample(space["n"])) == {0, 10, 20}


def test_log_scale_and_quantization_survive_translation() -> None:
    space = to_tune_param_space(
        parse_space({"lr": {"loguniform": [1e-4, 1e-1]}, "q": {"quniform": [0.0, 1.0, 0.25]}})
    )
    assert isinstance(space["lr"], Float)
    assert isinstance(space["lr"].get_sampler(), LogUniform)
    assert isinstance(space["q"].get_sampler(), Quantized)
    assert set(_sample(space["q"])) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    lrs = _sample(space["lr"])
    assert min(lrs) >= 1e-4 and max(lrs) <= 1e-1
    # Log scale: about a third of the samples in each decade.
    assert 0.25 < np.mean(np.array(lrs) < 1e-3) < 0.42


def test_choice_keeps_value_types_and_grid_and_constants_nest() -> None:
    space = to_tune_param_space(
        parse_space(
            {
                "opt": {"choice": ["adam", 2, [1, 2]]},
                "model": {"depth": {"grid": [1, 2]}, "act": "relu"},
            }
        )
    )
    assert isinstance(space["opt"], Categorical)
    assert space["opt"].categories == ["adam", 2, [1, 2]]
    assert space["model"] == {"depth": {"grid_search": [1, 2]}, "act": "relu"}
