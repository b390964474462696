"""Combinations Ray would reject only after start-up, or silently mishandle, are refused."""

from __future__ import annotations

from typing import Any

import pytest

from tunefleet.search import FifoSettings, SearchSettings, parse_space
from tunefleet.search.algorithms import build_search
from tunefleet.search.combinations import SearchConfigError, check_search
from tunefleet.search.schedulers import AshaSettings, HyperbandSettings, MedianSettings

NUMERIC = {"lr": {"loguniform": [1e-4, 1e-1]}, "wd": {"uniform": [0.0, 0.1]}}


def _check(
    search: dict[str, Any], space: dict[str, Any] = NUMERIC, scheduler: Any = None, stop: Any = None
) -> None:
    check_search(
        SearchSettings(**search), scheduler or FifoSettings(), parse_space(space), stop or {}
    )


@pytest.mark.parametrize(
    ("search", "space", "scheduler", "message"),
    [
        (
            {"algorithm": "pbt"},
            NUMERIC,
            AshaSettings(name="asha", max_t=10),
            r"^scheduler\.name: pbt is itself the scheduler",
        ),
        (
            {"algorithm": "pb2"},
            {**NUMERIC, "opt": {"choice": ["a", "b"]}},
            None,
            r"^space\.opt: pb2 models numeric parameters only, but this is a choice; make it numeric, or use algorithm pbt\.$",
        ),
        (
            {"algorithm": "pbt"},
            {"epochs": 3},
            None,
            r"^space: pbt needs at least one searched parameter to mutate",
        ),
        (
            {"algorithm": "pbt"},
            {"x": {"grid": [1, 2]}},
            None,
            r"^space\.x: `grid` values cannot be used with search\.algorithm 'pbt'",
        ),
        (
            {"algorithm": "hyperopt"},
            {"x": {"grid": [1, 2]}},
            None,
            r"^space\.x: `grid` values cannot be used with search\.algorithm 'hyperopt'",
        ),
        (
            {"algorithm": "optuna", "sampler": "cmaes"},
            {**NUMERIC, "opt": {"choice": ["a", "b"]}},
            None,
            r"^space\.opt: the cmaes sampler handles numeric parameters only",
        ),
        (
            {"algorithm": "optuna", "sampler": "cmaes"},
            {"lr": {"loguniform": [1e-4, 1e-1]}},
            None,
            r"^search\.sampler: cmaes needs at least two numeric parameters",
        ),
        (
            {"algorithm": "optuna", "repeat": 3},
            NUMERIC,
            AshaSettings(name="asha", max_t=10),
            r"^search\.repeat: repeated evaluations are averaged only when every repeat runs to the end, but scheduler 'asha'",
        ),
        (
            {"algorithm": "random", "repeat": 2},
            NUMERIC,
            MedianSettings(name="median"),
            r"^search\.repeat: .* scheduler 'median' stops trials early",
        ),
        (
            {"algorithm": "random", "repeat": 2},
            {"x": {"grid": [1, 2]}},
            None,
            r"^search\.repeat: `grid` values \(space\.x\) cannot be repeated by algorithm random; to repeat each config with other seeds, add `seed: \{grid: \[0, 1, 2\]\}` to space instead of repeat\.$",
        ),
        (
            {"algorithm": "grid", "repeat": 2},
            {"x": {"grid": [1, 2]}},
            None,
            r"^search\.repeat: grid evaluates fixed configs; to repeat each with other seeds, add `seed: \{grid: \[0, 1, 2\]\}`",
        ),
        (
            {"algorithm": "optuna"},
            NUMERIC,
            HyperbandSettings(name="hyperband"),
            r"^scheduler\.max_t: hyperband needs a budget; set `scheduler\.max_t` or `stop\.training_iteration`\.$",
        ),
        (
            {"algorithm": "random", "points_to_evaluate": [{"lr": 0.01, "wdd": 0}]},
            NUMERIC,
            None,
            r"^search\.points_to_evaluate\[0\]\.wdd: not a parameter of space; did you mean 'wd'\?$",
        ),
    ],
)
def test_invalid_combinations_are_refused(
    search: dict[str, Any], space: dict[str, Any], scheduler: Any, message: str
) -> None:
    with pytest.raises(SearchConfigError, match=message):
        _check(search, space, scheduler)


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (
            {"algorithm": "hyperopt", "sampler": "tpe"},
            r"search\.sampler: only `algorithm: optuna` takes a sampler",
        ),
        (
            {"algorithm": "pbt", "points_to_evaluate": [{"lr": 0.1}]},
            r"search\.points_to_evaluate: pbt starts from random configs",
        ),
        ({"algorithm": "pb2", "repeat": 2}, r"search\.repeat: pb2 trials exchange checkpoints"),
        (
            {"algorithm": "optuna", "pbt": {"perturbation_interval": 2}},
            r"search\.pbt: options for population-based training, but algorithm is 'optuna'",
        ),
        (
            {"algorithm": "optuna", "sampler": "nsga2", "n_initial_points": 5},
            r"search\.n_initial_points: only hyperopt and optuna's tpe, cmaes and gp samplers",
        ),
    ],
)
def test_settings_that_contradict_themselves_are_refused(
    search: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SearchSettings(**search)


@pytest.mark.parametrize(
    ("search", "scheduler", "stop"),
    [
        ({"algorithm": "pbt"}, None, None),
        ({"algorithm": "optuna", "sampler": "cmaes"}, None, None),
        (
            {"algorithm": "optuna", "sampler": {"name": "gp"}},
            AshaSettings(name="asha"),
            {"training_iteration": 5},
        ),
        ({"algorithm": "hyperopt", "repeat": 3}, None, None),
        (
            {"algorithm": "random", "max_concurrent": 2, "time_budget_s": 60},
            HyperbandSettings(name="hyperband", max_t=9),
            None,
        ),
    ],
)
def test_valid_combinations_pass(search: dict[str, Any], scheduler: Any, stop: Any) -> None:
    _check(search, NUMERIC, scheduler, stop)


@pytest.mark.parametrize(
    ("search", "space", "message"),
    [
        (
            {"algorithm": "random"},
            {},
            r"^space: no distribution to search, so all search\.num_samples=10 \(the default\) "
            r"trials would run the same config; add one \(e\.g\. `lr: \{loguniform: "
            r"\[1\.0e-4, 1\.0e-1\]\}`\), or for one run of these constants set "
            r"`search\.num_samples: 1` \(with `search\.repeat: N` to run it with N seeds\)\.$",
        ),
        (
            {"algorithm": "random", "num_samples": 20, "repeat": 2},
            {"epochs": 3, "model": {"depth": 2}},
            r"^space: no distribution to search, so all search\.num_samples=20 trials would run "
            r"the same config; .* set `search\.num_samples: 1`",
        ),
        (
            {"algorithm": "optuna", "num_samples": 20},
            {"epochs": 3},
            r"^space: no distribution to search, so search\.algorithm 'optuna tpe' has nothing "
            r"to sample; add one .*, or for one run of these constants use algorithm random "
            r"with `search\.num_samples: 1` \(with `search\.repeat: N` to run it with N seeds\)\.$",
        ),
        (
            {"algorithm": "hyperopt", "num_samples": 1},
            {"x": {"const": [1, 2]}},
            r"^space: no distribution to search, so search\.algorithm 'hyperopt' has nothing",
        ),
    ],
)
def test_a_space_with_nothing_to_search_is_refused(
    search: dict[str, Any], space: dict[str, Any], message: str
) -> None:
    with pytest.raises(SearchConfigError, match=message):
        _check(search, space)


@pytest.mark.parametrize(
    "search", [{"num_samples": 1}, {"num_samples": 1, "repeat": 3}, {"num_samples": 1, "seed": 4}]
)
def test_one_run_of_constants_is_allowed_and_repeat_gives_it_seeds(search: dict[str, Any]) -> None:
    space = parse_space({"epochs": 3, "model": {"depth": 2}})
    settings = SearchSettings(**search)
    check_search(settings, FifoSettings(), space, {})
    built = build_search(settings, FifoSettings(), space=space, stop={})
    assert built.param_space == {"epochs": 3, "model": {"depth": 2}}
    if settings.repeat > 1:
        searcher = built.search_alg
        searcher.set_search_properties("score", "max", built.param_space)
        suggested = [searcher.suggest(f"t{i}") for i in range(3)]
        assert [s["__trial_index__"] for s in suggested] == [0, 1, 2]


def test_sampler_shorthand_and_options() -> None:
    assert SearchSettings(algorithm="optuna", sampler="nsga2").sampler.population_size == 50
    settings = SearchSettings(algorithm="optuna", sampler={"name": "qmc", "qmc_type": "halton"})
    assert settings.optuna_sampler == "qmc" and settings.sampler.qmc_type == "halton"
    assert SearchSettings(algorithm="optuna").optuna_sampler == "tpe"


LINEAR = {"lr": {"uniform": [1e-4, 1e-1]}, "layers": {"randint": [1, 4]}}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            NUMERIC,
            r"^space\.lr: pb2 explores bounds on a linear scale only, but this is "
            r"loguniform\[0\.0001, 0\.1\]; use `uniform` bounds \(e\.g\. over the exponent\), "
            r"or algorithm pbt\.$",
        ),
        (
            {"width": {"lograndint": [8, 512]}},
            r"^space\.width: pb2 explores bounds on a linear scale only, but this is "
            r"lograndint\[8, 512\]; use `randint` bounds",
        ),
    ],
)
def test_pb2_refuses_log_scaled_parameters(space: dict[str, Any], message: str) -> None:
    with pytest.raises(SearchConfigError, match=message):
        _check({"algorithm": "pb2"}, space)
    _check({"algorithm": "pbt"}, space)  # PBT perturbs by factors: log ranges are fine
    _check({"algorithm": "pb2"}, LINEAR)


@pytest.mark.parametrize(
    ("scheduler", "stop", "message"),
    [
        (
            AshaSettings(name="asha", grace_period=5),
            {"training_iteration": 3},
            r"^scheduler\.grace_period: must be <= max_t, but got grace_period=5 and max_t=3 "
            r"\(from stop\.training_iteration\); lower grace_period or raise "
            r"stop\.training_iteration\.$",
        ),
        (
            AshaSettings(name="asha", time_attr="time_total_s"),
            {"time_total_s": 0.5},
            r"^scheduler\.max_t: asha takes its budget from stop\.time_total_s=0\.5, which gives "
            r"max_t=0 \(whole units of time_total_s\); set `scheduler\.max_t` to at least 1 or "
            r"raise stop\.time_total_s\.$",
        ),
        (
            HyperbandSettings(name="hyperband"),
            {"training_iteration": 0},
            r"^scheduler\.max_t: hyperband takes its budget from stop\.training_iteration=0, "
            r"which gives max_t=0",
        ),
    ],
)
def test_a_budget_from_stop_must_fit_the_scheduler(
    scheduler: Any, stop: dict[str, Any], message: str
) -> None:
    with pytest.raises(SearchConfigError, match=message):
        _check({"algorithm": "random"}, NUMERIC, scheduler, stop)


@pytest.mark.parametrize(
    ("scheduler", "stop"),
    [
        (AshaSettings(name="asha", grace_period=3), {"training_iteration": 3}),
        (AshaSettings(name="asha", time_attr="time_total_s"), {"time_total_s": 1.5}),
        (HyperbandSettings(name="hyperband"), {"training_iteration": 1}),
        (AshaSettings(name="asha", grace_period=2, max_t=4), {"training_iteration": 1}),
    ],
)
def test_a_budget_that_fits_passes_and_builds(scheduler: Any, stop: dict[str, Any]) -> None:
    from tunefleet.search.schedulers import build_scheduler

    _check({"algorithm": "random"}, NUMERIC, scheduler, stop)
    build_scheduler(scheduler, stop=stop)  # Ray's own checks agree
