"""Each backend receives the space faithfully: scale, quantization, integer type, choices."""

from __future__ import annotations

import numpy as np
import pytest
from hyperopt.pyll import stochastic
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from ray.tune.search.hyperopt import HyperOptSearch
from ray.tune.search.optuna import OptunaSearch

from tunefleet.search import parse_space
from tunefleet.search.tune_space import to_tune_param_space

SPACE = {
    "lr": {"loguniform": [1e-4, 1e-1]},
    "q": {"quniform": [0.0, 1.0, 0.25]},
    "n": {"randint": [1, 3]},
    "m": {"qrandint": [0, 20, 10]},
    "g": {"lograndint": [1, 64]},
    "opt": {"choice": ["adam", 2, 0.5]},
    "const": 5,
}


def test_optuna_gets_the_same_distributions() -> None:
    converted = OptunaSearch.convert_search_space(to_tune_param_space(parse_space(SPACE)))
    assert converted == {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "q": FloatDistribution(0.0, 1.0, step=0.25),
        "n": IntDistribution(1, 3),  # inclusive, as written
        "m": IntDistribution(0, 20, step=10),
        "g": IntDistribution(1, 64, log=True),
        "opt": CategoricalDistribution(("adam", 2, 0.5)),
    }


def test_hyperopt_samples_stay_typed_inclusive_and_log_scaled() -> None:
    converted = HyperOptSearch.convert_search_space(to_tune_param_space(parse_space(SPACE)))
    rng = np.random.default_rng(0)
    samples = [stochastic.sample(converted, rng=rng) for _ in range(3000)]
    assert {s["n"] for s in samples} == {1, 2, 3}
    assert all(isinstance(s["n"], (int, np.integer)) for s in samples)
    assert {s["m"] for s in samples} <= {0, 10, 20} and 20 in {s["m"] for s in samples}
    assert {s["q"] for s in samples} <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert {s["opt"] for s in samples} == {"adam", 2, 0.5}
    lrs = np.array([s["lr"] for s in samples])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-1
    assert 0.28 < np.mean(lrs < 1e-3) < 0.39  # a third per decade: log scale kept
    gs = np.array([s["g"] for s in samples])
    assert gs.min() >= 1 and gs.max() <= 64 and np.median(gs) < 16  # log-scaled integers
    assert all(s["const"] == 5 for s in samples)


@pytest.mark.parametrize("backend", ["optuna", "hyperopt"])
def test_suggested_configs_keep_value_types(backend: str) -> None:
    from tunefleet.search import FifoSettings
    from tunefleet.search.algorithms import build_search
    from tunefleet.search.settings import SearchSettings

    space = {
        **SPACE,
        "layers": {"choice": [[64, 64], [128]]},
        "act": {"choice": [{"name": "relu"}, {"name": "gelu", "approx": True}]},
        "model": {"depth": {"randint": [2, 4]}},
    }
    search = build_search(
        SearchSettings(algorithm=backend, seed=1), FifoSettings(), space=parse_space(space), stop={}
    )
    searcher = search.search_alg
    searcher.set_search_properties("score", "max", search.param_space)
    configs = [searcher.suggest(f"t{i}") for i in range(30)]
    for config in configs:
        assert isinstance(config["n"], int) and 1 <= config["n"] <= 3
        assert isinstance(config["g"], int)
        assert config["opt"] in ("adam", 2, 0.5) and type(config["opt"]) in (str, int, float)
        assert config["layers"] in ([64, 64], [128]) and isinstance(config["layers"], list)
        assert config["act"] in ({"name": "relu"}, {"name": "gelu", "approx": True})
        assert isinstance(config["model"]["depth"], int) and 2 <= config["model"]["depth"] <= 4
        assert config.get("const", 5) == 5  # Ray merges constants from param_space
