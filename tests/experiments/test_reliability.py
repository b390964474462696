"""Reliability: unusable metric values (NaN, inf, never reported), bad storage, and the
searcher wrapper that keeps such values away from Optuna and Hyperopt."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from pydantic import ValidationError
from ray.tune.search.optuna import OptunaSearch

from tests.experiments.test_resume import REPO, SLOW, TUNEFLEET, _env, resume_to_completion
from tunefleet.experiments.cli import main
from tunefleet.experiments.run.runner import RunError, storage_root
from tunefleet.search import AshaSettings, MedianSettings, PBTSettings, SearchSettings
from tunefleet.search.searcher_wrappers import FiniteTarget, target_problem
from tunefleet.search.settings import CmaEsSettings

BAD_METRICS = """
name: bad
trainable: tests.support.bad_metrics:{trainable}
metric: score
mode: max
space:
  x: {{uniform: [0.0, 1.0]}}
  steps: 2
search:
  algorithm: {algorithm}
  num_samples: 6
  seed: 0
  n_initial_points: 2
  points_to_evaluate: [{{x: 0.9}}, {{x: 0.2}}]
"""

PROBLEMS = {
    "nan_when_large": r"^score is nan at iteration 2; the searcher counted the trial as failed$",
    "inf_when_large": r"^score is inf at iteration 2; the searcher counted the trial as failed$",
    "silent_when_large": r"^score was never reported \(reported: loss\); the searcher counted",
}


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
@pytest.mark.parametrize("algorithm", ["hyperopt", "optuna"])
@pytest.mark.parametrize("trainable", list(PROBLEMS))
def test_unusable_target_values_mark_the_trial_and_the_search_goes_on(
    write_spec, tmp_path: Path, capsys, trainable: str, algorithm: str
) -> None:
    spec = write_spec(BAD_METRICS.format(trainable=trainable, algorithm=algorithm))
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    trials = pd.read_parquet(tmp_path / "bad" / "trials.parquet")

    # Every trial ran: the searcher kept suggesting after the failures it was told of.
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert (trials["status"] == "TERMINATED").all()
    bad = trials["config/x"] > 0.5
    assert bad.any() and (~bad).any()
    assert trials.loc[bad, "invalid_metric"].str.match(PROBLEMS[trainable]).all()
    assert trials.loc[~bad, "invalid_metric"].isna().all()
    # Good trials keep their results; a bad one never has a non-finite best value.
    good = trials[~bad]
    expected = 2 * good["config/x"].to_numpy()
    assert good["score"].to_numpy() == pytest.approx(expected)
    assert good["best/score"].to_numpy() == pytest.approx(expected)
    assert trials["best/score"].dropna().map(math.isfinite).all()
    if trainable == "nan_when_large":  # finite at iteration 1, NaN at the end
        assert trials.loc[bad, "best/score"].notna().all()
    else:
        assert trials.loc[bad, "best/score"].isna().all()
    # The summary names the problem and picks the best among the usable trials.
    n = int(bad.sum())
    assert f"{n} trial{'' if n == 1 else 's'} without a usable score" in out
    best = good.loc[good["best/score"].idxmax()]
    assert f"(trial {best['trial_id']})" in out
    iterations = pd.read_parquet(tmp_path / "bad" / "iterations.parquet")
    assert len(iterations) == 6 * 2


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_extend_warm_starts_from_an_experiment_with_unusable_values(
    write_spec, tmp_path: Path
) -> None:
    spec = write_spec(BAD_METRICS.format(trainable="nan_when_large", algorithm="optuna"))
    assert (
        main(["run", str(spec), "--storage", str(tmp_path), "--set", "search.num_samples=3"]) == 0
    )
    # The bad trial's `score` column holds NaN; its searcher saw a failure, and so does the
    # warm-started one (Optuna refuses a NaN value for a finished trial).
    assert main(["resume", str(tmp_path / "bad"), "--extend", "2"]) == 0
    trials = pd.read_parquet(tmp_path / "bad" / "trials.parquet")
    assert len(trials) == 5 and (trials["status"] == "TERMINATED").all()
    assert trials["invalid_metric"].notna().sum() == (trials["config/x"] > 0.5).sum() >= 1


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"score": 1.5}, None),
        ({"score": 0}, None),
        ({"score": math.nan}, "score is nan"),
        ({"score": -math.inf}, "score is -inf"),
        ({"loss": 1.0}, "score was never reported"),
        (None, "score was never reported"),
        ({"score": "high"}, "score is not a number ('high')"),
        ({"score": True}, "score is not a number (True)"),
    ],
)
def test_target_problem(result: dict | None, problem: str | None) -> None:
    assert target_problem(result, "score") == problem
    assert target_problem(result, ["score"]) == problem


def _optuna(wrap: bool) -> tuple[object, optuna.Study]:
    searcher = OptunaSearch(sampler=optuna.samplers.RandomSampler(seed=0))
    outer = FiniteTarget(searcher) if wrap else searcher
    from ray import tune

    outer.set_search_properties("score", "max", {"x": tune.uniform(0, 1)})
    return outer, searcher._ot_study


def test_finite_target_tells_optuna_a_nan_trial_failed() -> None:
    # Unwrapped, Ray's OptunaSearch hands NaN to Optuna, which refuses it: the Optuna
    # trial stays RUNNING for ever (Ray only logs a warning).
    raw, raw_study = _optuna(wrap=False)
    raw.suggest("t1")
    raw.on_trial_complete("t1", {"score": math.nan, "training_iteration": 1})
    assert [t.state for t in raw_study.trials] == [optuna.trial.TrialState.RUNNING]

    wrapped, study = _optuna(wrap=True)
    for tid, result in [
        ("t1", {"score": math.nan, "training_iteration": 1}),
        ("t2", {"loss": 1.0, "training_iteration": 1}),
        ("t3", {"score": math.inf, "training_iteration": 1}),
        ("t4", {"score": 0.5, "training_iteration": 1}),
    ]:
        assert wrapped.suggest(tid) is not None
        wrapped.on_trial_result(tid, result)  # not passed on when unusable
        wrapped.on_trial_complete(tid, result)
    states = [t.state for t in study.trials]
    failed = optuna.trial.TrialState.FAIL
    assert states == [failed, failed, failed, optuna.trial.TrialState.COMPLETE]
    assert study.trials[3].value == 0.5
    wrapped.add_evaluated_point({"x": 0.3}, math.nan)
    assert study.trials[-1].state == failed


@pytest.mark.slow  # a valid spec: the command starts Ray early, then stops it
def test_storage_that_is_a_file_is_refused(write_spec, tmp_path: Path, capsys) -> None:
    spec = write_spec(BAD_METRICS.format(trainable="nan_when_large", algorithm="optuna"))
    storage = tmp_path / "not_a_folder"
    storage.write_text("x")
    assert main(["run", str(spec), "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"tunefleet: error: --storage: {storage} is a file, not a folder; give a folder for "
        "the results (it is created if missing).\n"
    )
    assert storage.read_text() == "x"


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    spec = tmp_path / "slow.yaml"
    spec.write_text(SLOW)
    exp = tmp_path / "results" / "slow"
    driver = subprocess.Popen(
        [TUNEFLEET, "run", str(spec), "--storage", str(tmp_path / "results")],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        finished = 0
        while time.monotonic() < deadline and finished < 2:
            time.sleep(0.5)
            if (exp / "trials.parquet").exists():
                trials = pd.read_parquet(exp / "trials.parquet")
                finished = int((trials["status"] == "TERMINATED").sum())
        assert finished >= 2, "the run did not get far enough to be interrupted"
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        out, err = driver.communicate(timeout=90)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    assert driver.returncode == 130, err
    assert f"continue with: tunefleet resume {exp}" in err
    # The last progress line counts the trials Ctrl-C stopped as unfinished, not as done.
    last_progress = [line for line in err.splitlines() if line.startswith("[")][-1]
    assert last_progress.endswith(" · interrupted") and "6/6 done" not in last_progress
    assert "Traceback" not in out + err
    interrupted = pd.read_parquet(exp / "trials.parquet")
    assert len(interrupted) >= 2
    assert (interrupted["status"] != "TERMINATED").any()  # not reported as finished
    assert set(interrupted["status"]) <= {"TERMINATED", "RUNNING", "PENDING", "PAUSED"}

    resume_to_completion(exp)


@pytest.mark.slow  # a valid spec: the command starts Ray early, then stops it
def test_storage_uri_with_credentials_is_refused(write_spec, capsys) -> None:
    spec = write_spec(BAD_METRICS.format(trainable="nan_when_large", algorithm="optuna"))
    code = main(["run", str(spec), "--storage", "s3://AKIAKEY:s3cr3t@bucket/results"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "s3cr3t" not in err
    with pytest.raises(RunError, match=r"--storage: the URI holds credentials \(user:secret@"):
        storage_root("gs://user:pw@bucket/x")
    assert storage_root("s3://bucket/results/") == "s3://bucket/results"


@pytest.mark.slow
def test_embedded_ray_serves_no_dashboard_beyond_localhost() -> None:
    # In a fresh process: the test session's Ray would be reused by `connect`.
    script = (
        "import ray\n"
        "from tunefleet.cluster import connect\n"
        "with connect(num_cpus=1):\n"
        "    node = ray._private.worker._global_node\n"
        "    print(repr(node.address_info.get('webui_url')))\n"
        "    for proc in node.all_processes.get('dashboard', []):\n"
        "        args = open(f'/proc/{proc.process.pid}/cmdline').read().split(chr(0))\n"
        "        print(*[a for a in args if a.startswith('--host=')])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "''"  # no web UI / job API started
    # Ray still runs its dashboard process (metrics, state API): on the loopback only.
    assert lines[1:] and all(line == "--host=127.0.0.1" for line in lines[1:]), lines


@pytest.mark.parametrize(
    ("model", "key"),
    [
        (SearchSettings, "time_budget_s"),
        (CmaEsSettings, "sigma0"),
        (PBTSettings, "perturbation_interval"),
        (AshaSettings, "reduction_factor"),
        (MedianSettings, "grace_period"),
    ],
)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_float_settings_must_be_finite(model: type, key: str, value: float) -> None:
    extra = {"name": "cmaes"} if model is CmaEsSettings else {}
    with pytest.raises(ValidationError, match=r"Input should be a finite number"):
        model(**extra, **{key: value})


def test_an_infinite_setting_in_a_spec_is_one_line(write_spec, capsys) -> None:
    spec = write_spec(BAD_METRICS.format(trainable="nan_when_large", algorithm="optuna"))
    assert main(["validate", str(spec), "--set", "search.time_budget_s=.inf"]) == 2
    assert capsys.readouterr().err == (
        "tunefleet: error: search.time_budget_s: input should be a finite number, got inf.\n"
    )


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_a_run_where_no_trial_reports_the_target_exits_1(
    write_spec, tmp_path: Path, capsys
) -> None:
    spec = write_spec(BAD_METRICS.format(trainable="silent_when_large", algorithm="hyperopt"))
    overrides = ["--set", "space.x={uniform: [0.6, 1.0]}", "--set", "search.num_samples=3"]
    overrides += ["--set", "search.points_to_evaluate=[]"]
    assert main(["run", str(spec), "--storage", str(tmp_path), *overrides]) == 1
    out = capsys.readouterr().out
    assert "no trial reported a finite score." in out
    assert "3 trials without a usable score" in out and "score was never reported" in out
    trials = pd.read_parquet(tmp_path / "bad" / "trials.parquet")
    assert len(trials) == 3 and trials["invalid_metric"].notna().all()
