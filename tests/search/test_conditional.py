"""Conditional parameters: parsed from YAML, translated natively for Hyperopt and Optuna,
and received by the trainable in one flat shape whatever the backend."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import hyperopt
import numpy as np
import optuna
import pandas as pd
import pytest
from hyperopt.pyll import stochastic
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tunefleet.experiments.cli import main
from tunefleet.search import FifoSettings, SearchSettings, SpaceError, parse_space
from tunefleet.search.algorithms import build_search
from tunefleet.search.combinations import SearchConfigError, check_search
from tunefleet.search.conditional import DefineByRun, decode, hyperopt_space

SPACE: dict[str, Any] = {
    "optimizer": {
        "choice": {
            "sgd": {"lr": {"loguniform": [1e-4, 1e-1]}, "momentum": {"uniform": [0.0, 0.99]}},
            "adam": {"lr": {"loguniform": [1e-4, 1e-2]}, "beta": {"choice": [[0.9, 0.99], 0.5]}},
            "rmsprop": {"lr": {"loguniform": [1e-3, 1e-2]}, "centered": True},
        }
    },
    "batch": {"randint": [16, 64]},
    "epochs": 3,
}
LR = {"sgd": (1e-4, 1e-1), "adam": (1e-4, 1e-2), "rmsprop": (1e-3, 1e-2)}


def assert_consistent(config: dict[str, Any]) -> None:
    """The flat shape every backend must deliver: branch keys present iff drawn."""
    optimizer = config["optimizer"]
    low, high = LR[optimizer]
    assert low <= config["lr"] <= high and isinstance(config["lr"], float)
    assert ("momentum" in config) == (optimizer == "sgd")
    assert ("beta" in config) == (optimizer == "adam")
    assert ("centered" in config) == (optimizer == "rmsprop")
    if optimizer == "sgd":
        assert 0.0 <= config["momentum"] <= 0.99
    if optimizer == "adam":
        assert config["beta"] in ([0.9, 0.99], 0.5)  # a list stays a list
    if optimizer == "rmsprop":
        assert config["centered"] is True
    assert isinstance(config["batch"], int) and 16 <= config["batch"] <= 64


# Parsing -------------------------------------------------------------------------------


def test_a_choice_written_as_a_mapping_is_conditional() -> None:
    space = parse_space(SPACE)
    assert list(space.conditional) == ["optimizer"]
    assert space.conditional["optimizer"].values == ("sgd", "adam", "rmsprop")
    assert set(space.searched) == {"optimizer", "batch"}
    paths = ["optimizer", "batch", "epochs", "lr", "momentum", "beta", "centered"]
    assert space.config_paths() == paths
    assert "  if optimizer=sgd: momentum  uniform[0, 0.99]" in space.describe()


def test_branch_parameters_live_in_the_group_of_their_choice() -> None:
    raw = {"model": {"kind": {"choice": {"mlp": {"width": {"randint": [8, 16]}}, "linear": {}}}}}
    space = parse_space(raw)
    assert space.config_paths() == ["model/kind", "model/width"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"lr": 0.1, "opt": {"choice": {"sgd": {"lr": {"uniform": [0, 1]}}}}},
            r"^space\.opt\.choice\.sgd\.lr: 'lr' is also set outside the choice \(space\.lr\), "
            r"so a trial would get it twice; rename one\.$",
        ),
        (
            {
                "a": {"choice": {"x": {"p": 1}}},
                "b": {"choice": {"y": {"p": 2}}},
            },
            r"^space\.b\.choice\.y\.p: 'p' is also a parameter of the choice space\.a, and both "
            r"may be drawn; rename one\.$",
        ),
        (
            {"opt": {"choice": {"sgd": {"lr": {"grid": [0.1, 0.2]}}}}},
            r"^space\.opt\.choice\.sgd\.lr: `grid` values cannot sit under a conditional "
            r"choice; use `choice`\.$",
        ),
        (
            {"opt": {"choice": {"sgd": [0.1, 0.2]}}},
            r"^space\.opt\.choice\.sgd: must map the parameters that exist under 'sgd' \(or be "
            r"\{\}\), got \[0\.1, 0\.2\]; for a plain choice write a list: `choice: \[a, b\]`\.$",
        ),
        (
            {"opt": {"choice": {1: {}, "1": {}}}},
            r"^space\.opt\.choice\.1: the values '1' and '1' read the same; rename one\.$",
        ),
        (
            {"opt": {"choice": {}}},
            r"^space\.opt\.choice: needs at least one value, got an empty mapping\.$",
        ),
    ],
)
def test_malformed_conditional_choices_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        parse_space(raw)


@pytest.mark.parametrize(
    ("search", "space", "message"),
    [
        (
            {"algorithm": "grid"},
            {**SPACE, "batch": {"grid": [16, 32]}},
            r"^space\.optimizer: a choice with parameters per value needs a searcher that "
            r"samples them conditionally, but 'grid' tries fixed values; use algorithm random, "
            r"hyperopt, or optuna with sampler tpe, nsga2 or random\.$",
        ),
        (
            {"algorithm": "pbt"},
            SPACE,
            r"^space\.optimizer: .* but 'pbt' mutates every trial's parameters in place; ",
        ),
        (
            {"algorithm": "pb2"},
            SPACE,
            r"^space\.optimizer: .* but 'pb2' models a fixed set of numeric parameters; ",
        ),
        (
            {"algorithm": "optuna", "sampler": "cmaes"},
            SPACE,
            r"^space\.optimizer: .* but 'optuna cmaes' needs the same parameters in every trial",
        ),
        (
            {"algorithm": "optuna", "sampler": "gp"},
            SPACE,
            r"^space\.optimizer: .* but 'optuna gp' needs the same parameters in every trial",
        ),
        (
            {"algorithm": "random"},
            {**SPACE, "batch": {"grid": [16, 32]}},
            r"^space\.batch: `grid` values cannot be combined with a choice that has parameters "
            r"per value \(space\.optimizer\); use `choice` instead\.$",
        ),
        (
            {"algorithm": "hyperopt", "points_to_evaluate": [{"optimizer": "sgd"}]},
            SPACE,
            r"^search\.points_to_evaluate: not supported with a choice that has parameters per "
            r"value \(space\.optimizer\); remove points_to_evaluate\.$",
        ),
    ],
)
def test_searchers_that_cannot_sample_conditionally_are_refused(
    search: dict[str, Any], space: dict[str, Any], message: str
) -> None:
    with pytest.raises(SearchConfigError, match=message):
        check_search(SearchSettings(**search), FifoSettings(), parse_space(space), {})


# Translation, checked against each backend's own objects --------------------------------


def test_hyperopt_gets_nested_choices_with_its_own_distributions() -> None:
    domain = hyperopt.Domain(lambda s: s, hyperopt_space(parse_space(SPACE)))
    params = domain.params  # hyperopt's label -> distribution node
    assert set(params) == {
        "batch",
        "optimizer",
        "optimizer=sgd/lr",
        "optimizer=sgd/momentum",
        "optimizer=adam/lr",
        "optimizer=adam/beta",
        "optimizer=rmsprop/lr",
    }

    def bounds(label: str) -> tuple[str, list[float]]:
        node = params[label]
        return node.name, [a.obj for a in node.pos_args]

    assert bounds("optimizer=sgd/lr") == ("loguniform", [math.log(1e-4), math.log(1e-1)])
    assert bounds("optimizer=adam/lr") == ("loguniform", [math.log(1e-4), math.log(1e-2)])
    assert bounds("optimizer=sgd/momentum") == ("uniform", [0.0, 0.99])
    assert params["optimizer"].name == "randint"  # hp.choice draws an index

    rng = np.random.default_rng(0)
    drawn = set()
    for _ in range(300):
        sample = stochastic.sample(hyperopt_space(parse_space(SPACE)), rng=rng)
        config = {**decode(sample, parse_space(SPACE)), "epochs": 3}
        assert_consistent(config)
        drawn.add(config["optimizer"])
        # the nested option holds exactly its own branch's parameters
        option = sample["optimizer"]
        assert set(option) - {"__branch__"} == {f"optimizer={config['optimizer']}"}
    assert drawn == {"sgd", "adam", "rmsprop"}


def test_optuna_suggests_branch_parameters_only_under_their_value() -> None:
    space = parse_space(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    define = DefineByRun(space)
    for _ in range(60):
        trial = study.ask()
        define(trial)
        study.tell(trial, 0.0)
    seen = set()
    for trial in study.trials:
        dists = trial.distributions  # what Optuna itself recorded for this trial
        value = ("sgd", "adam", "rmsprop")[trial.params["optimizer"]]
        seen.add(value)
        assert dists["optimizer"] == CategoricalDistribution([0, 1, 2])
        assert dists["batch"] == IntDistribution(16, 64)
        branch = {k for k in dists if "=" in k}
        expected = {
            "sgd": {"optimizer=sgd/lr", "optimizer=sgd/momentum"},
            "adam": {"optimizer=adam/lr", "optimizer=adam/beta"},
            "rmsprop": {"optimizer=rmsprop/lr"},
        }[value]
        assert branch == expected
        if value == "sgd":
            assert dists["optimizer=sgd/lr"] == FloatDistribution(1e-4, 1e-1, log=True)
            assert dists["optimizer=sgd/momentum"] == FloatDistribution(0.0, 0.99)
        if value == "adam":
            assert dists["optimizer=adam/beta"] == CategoricalDistribution([0, 1])
    assert seen == {"sgd", "adam", "rmsprop"}


@pytest.mark.parametrize(
    ("algorithm", "sampler"), [("random", None), ("hyperopt", None), ("optuna", "tpe")]
)
def test_every_backend_suggests_the_same_flat_shape(algorithm: str, sampler: str | None) -> None:
    settings = SearchSettings(algorithm=algorithm, sampler=sampler, seed=2)
    space = parse_space(SPACE)
    search = build_search(settings, FifoSettings(), space=space, stop={}, metric="s", mode="max")
    assert search.param_space == {"epochs": 3}  # constants only: the searcher has the rest
    searcher = search.search_alg
    searcher.set_search_properties("s", "max", search.param_space)
    drawn = set()
    for i in range(40):
        config = {**search.param_space, **searcher.suggest(f"t{i}")}
        assert_consistent(config)
        drawn.add(config["optimizer"])
        searcher.on_trial_complete(f"t{i}", {"s": -config["lr"]})
    assert drawn == {"sgd", "adam", "rmsprop"}


def test_the_same_seed_suggests_the_same_conditional_configs() -> None:
    space = parse_space(SPACE)

    def configs(algorithm: str) -> list[dict[str, Any]]:
        search = build_search(
            SearchSettings(algorithm=algorithm, seed=5),
            FifoSettings(),
            space=space,
            stop={},
            metric="s",
            mode="max",
        )
        return [search.search_alg.suggest(f"t{i}") for i in range(5)]

    for algorithm in ("random", "hyperopt", "optuna"):
        assert configs(algorithm) == configs(algorithm)


# Real runs -------------------------------------------------------------------------------

RUN_SPEC = """
name: cond-{algorithm}
trainable: tests.support.conditional_trainables:echo_conditional
metric: score
mode: max
space:
  optimizer:
    choice:
      sgd: {{lr: {{loguniform: [1.0e-4, 1.0e-1]}}, momentum: {{uniform: [0.0, 0.99]}}}}
      adam: {{lr: {{loguniform: [1.0e-4, 1.0e-2]}}, beta: {{choice: [[0.9, 0.99], 0.5]}}}}
      rmsprop: {{lr: {{loguniform: [1.0e-3, 1.0e-2]}}, centered: true}}
  batch: {{randint: [16, 64]}}
  epochs: 3
search: {{algorithm: {algorithm}, num_samples: 8, seed: 1}}
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
@pytest.mark.parametrize("algorithm", ["random", "hyperopt", "optuna"])
def test_the_trainable_receives_consistent_conditional_configs(
    algorithm: str, write_spec, tmp_path: Path
) -> None:
    spec = write_spec(RUN_SPEC.format(algorithm=algorithm))
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    trials = pd.read_parquet(tmp_path / f"cond-{algorithm}" / "trials.parquet")
    assert len(trials) == 8 and (trials["status"] == "TERMINATED").all()
    for _, row in trials.iterrows():
        optimizer = row["config/optimizer"]
        # what the trainable itself saw
        assert row["received_momentum"] == int(optimizer == "sgd")
        assert row["received_beta"] == int(optimizer == "adam")
        assert row["received_keys"] == {"sgd": 5, "adam": 5, "rmsprop": 5}[optimizer]
        # what the results record: absent parameters are empty cells
        assert pd.isna(row["config/momentum"]) == (optimizer != "sgd")
        low, high = LR[optimizer]
        assert low <= row["config/lr"] <= high


def test_validate_names_the_random_sampler_used_for_a_conditional_space() -> None:
    from tunefleet.search.algorithms import describe_searcher

    text = describe_searcher(SearchSettings(seed=3), conditional=True)
    assert text == "random (Optuna's random sampler, for the conditional space; seed 3)"
