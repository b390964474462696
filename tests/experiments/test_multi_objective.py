"""Multi-objective search: validated before Ray starts, both objectives reach Optuna, and the
results mark exactly the non-dominated finished trials."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from ray.tune.search.optuna import OptunaSearch

from tunefleet.experiments.analysis.experiment import AnalysisError, load
from tunefleet.experiments.cli import main
from tunefleet.experiments.results.pareto import pareto_mask
from tunefleet.search import FifoSettings, SearchSettings
from tunefleet.search.combinations import SearchConfigError, check_objectives
from tunefleet.search.schedulers import AshaSettings, HyperbandSettings, MedianSettings

TWO = (["accuracy", "cost"], ["max", "min"])
NSGA2 = SearchSettings(algorithm="optuna", sampler="nsga2")


@pytest.mark.parametrize(
    ("search", "scheduler", "metric", "mode", "message"),
    [
        (
            SearchSettings(algorithm="hyperopt"),
            None,
            *TWO,
            r"^search\.algorithm: 2 metrics \(multi-objective\) need algorithm optuna with "
            r"sampler nsga2 or tpe, but the searcher is 'hyperopt'; set `algorithm: optuna` and "
            r"`sampler: nsga2` \(or tpe\), or give a single metric\.$",
        ),
        (SearchSettings(algorithm="random"), None, *TWO, r"searcher is 'random'"),
        (SearchSettings(algorithm="pbt"), None, *TWO, r"searcher is 'pbt'"),
        (SearchSettings(algorithm="optuna", sampler="cmaes"), None, *TWO, "'optuna cmaes'"),
        (SearchSettings(algorithm="optuna", sampler="gp"), None, *TWO, "'optuna gp'"),
        (
            NSGA2,
            AshaSettings(name="asha", max_t=4),
            *TWO,
            r"^scheduler\.name: asha stops trials early by one metric and cannot rank trials on "
            r"2 objectives; use scheduler fifo, or give a single metric\.$",
        ),
        (NSGA2, HyperbandSettings(name="hyperband", max_t=4), *TWO, r"^scheduler\.name: hyp"),
        (NSGA2, MedianSettings(name="median"), *TWO, r"^scheduler\.name: median stops"),
        (
            SearchSettings(algorithm="optuna", sampler="nsga2", repeat=2),
            None,
            *TWO,
            r"^search\.repeat: repeated evaluations are averaged for one metric only, but there "
            r"are 2; remove repeat, or give a single metric\.$",
        ),
        (
            NSGA2,
            None,
            ["accuracy", "cost"],
            ["max"],
            r"^mode: 2 metrics but 1 modes; give one mode per metric\.$",
        ),
        (
            NSGA2,
            None,
            ["accuracy", "cost"],
            "max",
            r"^mode: give one mode per metric, but metric is \['accuracy', 'cost'\] and mode is "
            r"'max'; write both as lists of the same length, or both as single values\.$",
        ),
        (
            NSGA2,
            None,
            ["accuracy"],
            ["max"],
            r"^metric: a list is for two or more objectives; write a single metric as "
            r"`metric: name` and `mode: max` \(or min\)\.$",
        ),
        (
            NSGA2,
            None,
            ["cost", "cost"],
            ["min", "max"],
            r"^metric: 'cost' is listed twice; list each objective once\.$",
        ),
    ],
)
def test_multi_objective_combinations_are_refused(
    search: SearchSettings, scheduler: Any, metric: Any, mode: Any, message: str
) -> None:
    with pytest.raises(SearchConfigError, match=message):
        check_objectives(search, scheduler or FifoSettings(), metric, mode)


@pytest.mark.parametrize("sampler", ["nsga2", "tpe"])
def test_optuna_nsga2_and_tpe_take_several_metrics(sampler: str) -> None:
    check_objectives(SearchSettings(algorithm="optuna", sampler=sampler), FifoSettings(), *TWO)


def test_the_cli_refuses_a_multi_objective_spec_in_one_line(write_spec, capsys) -> None:
    spec = write_spec(
        "name: mo\ntrainable: tests.support.conditional_trainables:trade_off\n"
        "metric: [accuracy, cost]\nmode: [max, min]\n"
        "space: {x: {uniform: [0, 1]}, y: {uniform: [0, 1]}}\n"
        "search: {algorithm: hyperopt}\n"
    )
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 metrics (multi-objective) need algorithm optuna" in err[0]


def brute_force_front(points: list[tuple[float, float]]) -> list[bool]:
    """Maximize the first value, minimize the second: an independent, literal check."""
    return [
        not any(
            q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])
            for j, q in enumerate(points)
            if j != i
        )
        for i, p in enumerate(points)
    ]


def test_pareto_mask_matches_brute_force_on_a_grid() -> None:
    points = [(float(a), float(b)) for a, b in itertools.product(range(4), [3, 1, 2, 1])]
    assert pareto_mask(points, ["max", "min"]) == brute_force_front(points)
    assert pareto_mask([(1.0, 1.0), None, (1.0, 1.0)], ["max", "min"]) == [True, False, True]


RUN = """
name: mo-run
trainable: tests.support.conditional_trainables:trade_off
metric: [accuracy, cost]
mode: [max, min]
space:
  x: {uniform: [0.0, 1.0]}
  y: {uniform: [0.0, 1.0]}
search:
  algorithm: optuna
  sampler: {name: nsga2, population_size: 4}
  num_samples: 8
  seed: 0
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_a_run_marks_the_pareto_front_and_optuna_gets_both_objectives(
    write_spec, tmp_path: Path, capsys
) -> None:
    spec = write_spec(RUN)
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "best accuracy = " in out.out + out.err  # the summary ranks by the first metric
    exp_dir = tmp_path / "mo-run"
    trials = pd.read_parquet(exp_dir / "trials.parquet")
    assert len(trials) == 8 and (trials["status"] == "TERMINATED").all()
    assert trials["pareto"].dtype == bool
    points = list(zip(trials["accuracy"], trials["cost"], strict=True))
    expected = brute_force_front(points)
    assert trials["pareto"].tolist() == expected
    assert 0 < sum(expected) < 8  # a real front: some trials on it, some dominated

    exp = load(exp_dir)
    assert exp.metric == "accuracy" and exp.mode == "max"
    assert set(exp.pareto()["trial_id"]) == set(trials.loc[trials["pareto"], "trial_id"])

    # The searcher Ray saved with the experiment is an Optuna study with two directions,
    # told both values of every trial.
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(exp_dir))
    study = searcher._ot_study
    assert study.directions == [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 8
    told = sorted(tuple(t.values) for t in complete)
    assert told == sorted(points)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_a_single_metric_experiment_has_no_pareto_front(write_spec, tmp_path: Path) -> None:
    spec = write_spec(
        "name: so\ntrainable: tests.support.conditional_trainables:trade_off\n"
        "metric: accuracy\nmode: max\nspace: {x: {uniform: [0, 1]}, y: 0.5}\n"
        "search: {num_samples: 2, seed: 0}\n"
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    assert "pareto" not in pd.read_parquet(tmp_path / "so" / "trials.parquet").columns
    with pytest.raises(AnalysisError, match=r"^so optimized one metric \(accuracy\); a Pareto"):
        load(tmp_path / "so").pareto()
