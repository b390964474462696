"""The searchers are really used: seeded runs repeat, and model-based ones beat random."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.schedulers import HyperBandScheduler, MedianStoppingRule, PopulationBasedTraining
from ray.tune.schedulers.pb2 import PB2
from ray.tune.search import Repeater

from benchmarks.functions import BRANIN
from benchmarks.search_quality import regret_curve, suggestions
from tunefleet.search import FifoSettings, SearchSettings, parse_space
from tunefleet.search.algorithms import ClipToSpace, build_search
from tunefleet.search.schedulers import HyperbandSettings, MedianSettings
from tunefleet.search.space import Float, Int

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _configs(settings: SearchSettings, n: int = 12) -> list[dict]:
    return [c for c, _ in suggestions(settings, BRANIN, n)]


@pytest.mark.parametrize(
    "search",
    [
        {"algorithm": "random"},
        {"algorithm": "hyperopt", "n_initial_points": 5},
        {"algorithm": "optuna"},
        {"algorithm": "optuna", "sampler": "cmaes"},
        {"algorithm": "optuna", "sampler": "qmc"},
        {"algorithm": "optuna", "sampler": {"name": "nsga2", "population_size": 4}},
    ],
)
def test_the_same_seed_suggests_the_same_configs(search: dict) -> None:
    first = _configs(SearchSettings(**search, seed=7))
    assert first == _configs(SearchSettings(**search, seed=7))
    assert first != _configs(SearchSettings(**search, seed=8))


def test_model_based_searchers_differ_from_random_and_reach_lower_regret() -> None:
    n = 60
    regret = {}
    configs = {}
    for name, search in {
        "random": {"algorithm": "random"},
        "hyperopt": {"algorithm": "hyperopt"},
        "optuna-tpe": {"algorithm": "optuna"},
    }.items():
        history = suggestions(SearchSettings(**search, seed=0), BRANIN, n)
        configs[name] = [c for c, _ in history]
        regret[name] = regret_curve([v for _, v in history], BRANIN.minimum)[-1]
    assert configs["hyperopt"][20:] != configs["random"][20:]
    assert configs["optuna-tpe"][20:] != configs["random"][20:]
    assert regret["hyperopt"] < regret["random"]
    assert regret["optuna-tpe"] < regret["random"]


def test_repeat_wraps_the_searcher_and_pbt_replaces_the_scheduler() -> None:
    space = parse_space({"lr": {"loguniform": [1e-4, 1e-1]}, "opt": {"choice": ["a", "b"]}})
    repeated = build_search(
        SearchSettings(algorithm="optuna", repeat=3), FifoSettings(), space=space, stop={}
    )
    assert isinstance(repeated.search_alg, Repeater) and repeated.search_alg.repeat == 3
    pbt = build_search(
        SearchSettings(algorithm="pbt", pbt={"perturbation_interval": 2}),
        FifoSettings(),
        space=space,
        stop={},
    )
    assert isinstance(pbt.scheduler, PopulationBasedTraining)
    assert pbt.scheduler._perturbation_interval == 2
    assert pbt.scheduler._hyperparam_mutations["opt"] == ["a", "b"]
    numeric = parse_space({"lr": {"uniform": [1e-4, 1e-1]}})
    pb2 = build_search(SearchSettings(algorithm="pb2"), FifoSettings(), space=numeric, stop={})
    assert isinstance(pb2.scheduler, PB2)
    hb = build_search(
        SearchSettings(),
        HyperbandSettings(name="hyperband"),
        space=space,
        stop={"training_iteration": 27},
    )
    assert isinstance(hb.scheduler, HyperBandScheduler) and hb.scheduler._max_t_attr == 27
    med = build_search(
        SearchSettings(), MedianSettings(name="median", grace_period=2), space=space, stop={}
    )
    assert isinstance(med.scheduler, MedianStoppingRule)


def test_pbt_perturbations_stay_inside_the_space() -> None:
    clip = ClipToSpace(
        {
            "dropout": Float(0.0, 0.5),
            "width": Int(16, 64, q=16),
            "m/lr": Float(1e-4, 1e-1, log=True),
        }
    )
    config = clip({"dropout": 0.6, "width": 70.4, "m": {"lr": 0.12}, "other": 3})
    assert config == {"dropout": 0.5, "width": 64, "m": {"lr": 0.1}, "other": 3}
    assert isinstance(config["width"], int)
    assert clip({"dropout": -0.1, "width": 23.0, "m": {"lr": 1e-5}}) == {
        "dropout": 0.0,
        "width": 16,
        "m": {"lr": 1e-4},
    }


def test_pb2_bounds_are_nested_like_the_config() -> None:
    space = parse_space(
        {"model": {"dropout": {"uniform": [0.0, 0.5]}}, "width": {"randint": [8, 64]}}
    )
    pb2 = build_search(SearchSettings(algorithm="pb2"), FifoSettings(), space=space, stop={})
    # Ray refuses `/` in a bound's name and would fill `config["model/dropout"]` besides.
    assert pb2.scheduler._hyperparam_bounds == {"model": {"dropout": [0.0, 0.5]}, "width": [8, 64]}
