"""Experiments survive a killed driver, and finished ones can be extended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.support.specs import spec_yaml
from tunefleet.common.locations import locate
from tunefleet.experiments.cli import main
from tunefleet.experiments.results.parquet_io import read_frame

REPO = Path(__file__).resolve().parents[2]
TUNEFLEET = str(Path(sys.executable).with_name("tunefleet"))

# The searcher's state is pickled with Ray's experiment state and restored by `resume`:
# TPE, and NSGA-II (whose sampler holds a lock from Optuna 5.1 on).
SAMPLERS = {
    "tpe": {"sampler": "tpe", "n_initial_points": 3},
    "nsga2": {"sampler": {"name": "nsga2", "population_size": 4}},
}


def slow_spec(sampler: str = "tpe") -> str:
    return spec_yaml(
        name="slow",
        trainable="tests.support.trainables:slow_counter",
        space={"x": {"uniform": [0.0, 1.0]}, "steps": 8, "sleep": 0.5},
        # 2 at once on any machine: the kill must find trials finished and others running.
        search={
            "algorithm": "optuna",
            "num_samples": 6,
            "seed": 0,
            **SAMPLERS[sampler],
            "max_concurrent": 2,
        },
        results={"flush_every_s": 1},
    )


SLOW = slow_spec()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def resume_to_completion(exp: Path) -> pd.DataFrame:
    """`tunefleet resume` the 6-trial x 8-iteration SLOW experiment; checks it finished with
    every trial once and every iteration once, and returns its iterations."""
    proc = subprocess.run(
        [TUNEFLEET, "resume", str(exp)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet")
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert (trials["status"] == "TERMINATED").all() and (trials["iterations"] == 8).all()
    assert not iterations.duplicated(["trial_id", "training_iteration"]).any()
    assert len(iterations) == 6 * 8
    return iterations


@pytest.mark.slow
@pytest.mark.core
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_resume_after_kill_9_finishes_every_trial_once(sampler: str, tmp_path: Path) -> None:
    spec = tmp_path / "slow.yaml"
    spec.write_text(slow_spec(sampler))
    exp = tmp_path / "results" / "slow"
    driver = subprocess.Popen(
        [TUNEFLEET, "run", str(spec), "--storage", str(tmp_path / "results")],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # Killed once 2 trials have finished and another has checkpointed twice: the
        # Parquet files are flushed right after Ray saves its state, so what they show
        # is what the resumed run knows. (Killing right after the first 2 finished, as
        # this test once did, could catch the next trials before their first checkpoint:
        # they then rightly start over, and nothing shows a restore.)
        deadline = time.monotonic() + 120
        finished_before: set[str] = set()
        checkpointed: set[str] = set()
        while time.monotonic() < deadline and (len(finished_before) < 2 or not checkpointed):
            time.sleep(0.25)
            if (exp / "trials.parquet").exists() and (exp / "iterations.parquet").exists():
                # Read as tunefleet reads, the file opened once: given a path, pandas (pyarrow)
                # opens it twice and can pair the footer of one version with the pages of
                # the next, which the run renames over it every second.
                trials = read_frame(locate(str(exp / "trials.parquet")))
                rows = read_frame(locate(str(exp / "iterations.parquet")))
                finished_before = set(trials.loc[trials["status"] == "TERMINATED", "trial_id"])
                running = rows[~rows["trial_id"].isin(finished_before)]
                counts = running.groupby("trial_id")["training_iteration"].max()
                checkpointed = set(counts[(counts >= 2) & (counts < 8)].index)
        assert len(finished_before) >= 2 and checkpointed, "the run did not get far enough"
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    killed_at = time.time()
    before = pd.read_parquet(exp / "iterations.parquet")
    assert (
        len(pd.read_parquet(exp / "trials.parquet")) < 6
        or before.groupby("trial_id").size().min() < 8
    )

    iterations = resume_to_completion(exp)
    # Finished trials were not run again: all their results predate the kill.
    done = iterations[iterations["trial_id"].isin(finished_before)]
    assert (done["timestamp"] <= killed_at).all()
    # Unfinished ones continued from a checkpoint rather than from step 1.
    resumed = (
        iterations[iterations["resumed"].notna()]
        if "resumed" in iterations
        else iterations.iloc[:0]
    )
    assert len(resumed) >= 1 and (resumed["resumed"] >= 1).all()
    assert (iterations["step"] == iterations["training_iteration"]).all()


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_extend_adds_trials_and_warm_starts_the_searcher(write_spec, tmp_path: Path) -> None:
    spec = write_spec(
        """
name: grow
trainable: tests.support.trainables:linear
metric: score
mode: max
space:
  x: {uniform: [0.0, 1.0]}
  steps: 2
search: {algorithm: optuna, num_samples: 8, seed: 1, n_initial_points: 8}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    first = pd.read_parquet(tmp_path / "grow" / "trials.parquet")
    assert main(["resume", str(tmp_path / "grow"), "--extend", "6"]) == 0
    trials = pd.read_parquet(tmp_path / "grow" / "trials.parquet")
    assert len(trials) == 14 and trials["trial_id"].is_unique
    pd.testing.assert_frame_equal(trials.iloc[:8][first.columns].reset_index(drop=True), first)
    new = trials.iloc[8:]
    assert (new["status"] == "TERMINATED").all()
    # With 8 earlier results, TPE is past its random start-up: it samples near the best x
    # (score = 2x) instead of starting over at random.
    assert new["config/x"].median() > first["config/x"].median()
    assert new["config/x"].min() > 0.3
    assert len(pd.read_parquet(tmp_path / "grow" / "iterations.parquet")) == 14 * 2


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_extend_runs_an_nsga2_search_on(write_spec, tmp_path: Path) -> None:
    """NSGA-II's searcher is pickled when the run starts, saved with Ray's state and
    rebuilt for the new trials."""
    spec = write_spec(
        """
name: evolve
trainable: tests.support.trainables:linear
metric: score
mode: max
space:
  x: {uniform: [0.0, 1.0]}
  steps: 2
search: {algorithm: optuna, sampler: {name: nsga2, population_size: 2}, num_samples: 4, seed: 1}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    assert main(["resume", str(tmp_path / "evolve"), "--extend", "3"]) == 0
    trials = pd.read_parquet(tmp_path / "evolve" / "trials.parquet")
    assert len(trials) == 7 and trials["trial_id"].is_unique
    assert (trials["status"] == "TERMINATED").all()


def test_resume_refuses_a_folder_that_is_not_an_experiment(tmp_path: Path, capsys) -> None:
    assert main(["resume", str(tmp_path)]) == 2
    assert f"{tmp_path}: no spec.yaml here" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_extend_with_hyperopt_runs_the_new_trials_and_says_it_starts_afresh(
    write_spec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ray's HyperOptSearch cannot be told earlier results: `--extend` used to end in an
    unexpected NotImplementedError; now the new trials run, and one line says why the
    searcher does not know the earlier ones."""
    spec = write_spec(
        """
name: grow_tpe
trainable: tests.support.trainables:linear
metric: score
mode: max
space:
  x: {uniform: [0.0, 1.0]}
  steps: 1
search: {algorithm: hyperopt, num_samples: 3, seed: 1, n_initial_points: 2}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "grow_tpe"), "--extend", "2"]) == 0
    err = capsys.readouterr().err
    assert "warning: --extend: the searcher is not told the 3 earlier results" in err
    assert "hyperopt" in err and "Traceback" not in err
    trials = pd.read_parquet(tmp_path / "grow_tpe" / "trials.parquet")
    assert len(trials) == 5 and (trials["status"] == "TERMINATED").all()
