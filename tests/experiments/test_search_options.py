"""Warm start, repeats and the time budget, end to end on a real Ray (issue 4, item 5)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.specs import spec_yaml
from tunefleet.experiments.analysis.experiment import load
from tunefleet.experiments.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_instance")]


def _run(
    write_spec, tmp_path: Path, search: dict[str, Any], sleep_s: float = 0.0
) -> tuple[int, Path]:
    log = tmp_path / "configs.jsonl"
    text = spec_yaml(
        name="options",
        trainable="tests.support.trainables:logs_config",
        space={"x": {"uniform": [0.0, 1.0]}, "log": str(log), "sleep_s": sleep_s},
        search=search,
    )
    spec = write_spec(text)
    code = main(["run", str(spec), "--storage", str(tmp_path / "results")])
    return code, log


def _configs(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize("algorithm", ["random", "hyperopt", "optuna"])
def test_points_to_evaluate_are_tried_first(write_spec, tmp_path: Path, algorithm: str) -> None:
    search = {
        "algorithm": algorithm,
        "num_samples": 4,
        "seed": 1,
        "max_concurrent": 1,
        "points_to_evaluate": [{"x": 0.123}, {"x": 0.877}],
    }
    code, log = _run(write_spec, tmp_path, search)
    assert code == 0
    configs = _configs(log)
    assert len(configs) == 4
    assert [c["x"] for c in configs[:2]] == [0.123, 0.877]
    assert all(c["x"] not in (0.123, 0.877) for c in configs[2:])


def test_repeat_runs_each_config_with_distinct_seeds(write_spec, tmp_path: Path) -> None:
    search = {"algorithm": "hyperopt", "num_samples": 3, "repeat": 2, "seed": 5}
    code, log = _run(write_spec, tmp_path, search)
    assert code == 0
    trials = pd.read_parquet(tmp_path / "results" / "options" / "trials.parquet")
    assert len(trials) == 6 and (trials["status"] == "TERMINATED").all()
    by_config = trials.groupby("config/x")
    assert by_config.size().tolist() == [2, 2, 2]  # three configs, two seeds each
    assert (by_config["trial_seed"].nunique() == 2).all()
    assert len(_configs(log)) == 6
    # The aggregate per config, as the searcher saw it: the mean over its seeds.
    configs = load(tmp_path / "results" / "options").configs()
    assert configs["trials"].tolist() == [2, 2, 2]
    means = trials.groupby("config/x")["best/score"].mean()
    for _, row in configs.iterrows():
        assert row["mean"] == pytest.approx(means[row["config/x"]])
    assert configs["mean"].is_monotonic_decreasing


def test_time_budget_ends_the_search_on_time(write_spec, tmp_path: Path, capsys) -> None:
    started = time.monotonic()
    code, log = _run(
        write_spec,
        tmp_path,
        {"algorithm": "random", "num_samples": 500, "seed": 0, "time_budget_s": 6},
        sleep_s=0.5,
    )
    elapsed = time.monotonic() - started
    assert code == 0
    trials = pd.read_parquet(tmp_path / "results" / "options" / "trials.parquet")
    # 500 trials of 0.5 s on 2 CPUs would take over two minutes; the budget ends it early.
    assert 1 <= len(trials) < 100
    assert elapsed < 60
    assert (trials["status"] == "TERMINATED").sum() >= 1
    assert len(_configs(log)) == len(trials)  # every started trial has its row
    assert "options:" in capsys.readouterr().out


NORMAL_SPEC = """
name: options
trainable: tests.support.trainables:logs_config
metric: score
mode: max
space:
  x: {{normal: [0.3, 0.1]}}
  lr: {{qlognormal: [-4.6, 0.5, 0.0001]}}
  log: {log}
search: {search}
"""


@pytest.mark.parametrize("algorithm", ["random", "hyperopt"])
def test_normal_priors_run_end_to_end(write_spec, tmp_path: Path, algorithm: str) -> None:
    log = tmp_path / "configs.jsonl"
    spec = write_spec(
        NORMAL_SPEC.format(
            log=json.dumps(str(log)), search=f"{{algorithm: {algorithm}, num_samples: 4, seed: 2}}"
        )
    )
    assert main(["run", str(spec), "--storage", str(tmp_path / "results")]) == 0
    configs = _configs(log)
    assert len(configs) == 4 and len({c["x"] for c in configs}) == 4
    assert all(c["lr"] > 0 and round(c["lr"] / 0.0001, 6).is_integer() for c in configs)
    trials = pd.read_parquet(tmp_path / "results" / "options" / "trials.parquet")
    assert (trials["status"] == "TERMINATED").all()
    assert sorted(trials["config/x"]) == sorted(c["x"] for c in configs)


def test_constants_run_once_with_seeds_but_not_as_a_search(
    write_spec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "configs.jsonl"

    def spec(search: dict[str, Any]) -> Path:
        text = spec_yaml(
            name="options",
            trainable="tests.support.trainables:logs_config",
            space={"x": 0.5, "log": str(log), "sleep_s": 0},
            search=search,
        )
        return write_spec(text)

    results = str(tmp_path / "results")
    assert main(["run", str(spec({"num_samples": 3, "seed": 7})), "--storage", results]) == 2
    assert capsys.readouterr().err.startswith(
        "tunefleet: error: space: no distribution to search, so all search.num_samples=3 "
        "trials would run the same config;"
    )
    assert not log.exists()
    assert (
        main(["run", str(spec({"num_samples": 1, "repeat": 3, "seed": 7})), "--storage", results])
        == 0
    )
    trials = pd.read_parquet(tmp_path / "results" / "options" / "trials.parquet")
    assert len(trials) == 3 and (trials["config/x"] == 0.5).all()
    assert sorted(trials["trial_seed"]) == [0, 1, 2]  # __trial_index__ 0, 1, 2
