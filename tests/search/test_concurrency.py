"""Trials run side by side: as many as the resources fit, or `search.max_concurrent`.

Ray runs a model-based `Searcher` (Optuna, Hyperopt, conditional spaces, `repeat`) one
trial at a time unless it is given a cap, which tunefleet sets from the cluster (and moves
as the cluster changes: tests/cluster/test_elastic.py); Ray applies
`TuneConfig.max_concurrent_trials` only to a `Searcher`, so random, grid, PBT and PB2 (its
`BasicVariantGenerator`) carry `max_concurrent` themselves. Overlaps are measured from the
start and end times the trials report.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.overlap import most_at_once
from tunefleet.experiments.cli import main
from tunefleet.search import FifoSettings, SearchSettings, parse_space
from tunefleet.search.algorithms import build_search

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TUNEFLEET = str(Path(sys.executable).with_name("tunefleet"))


@pytest.mark.parametrize("algorithm", ["random", "grid", "pbt", "pb2"])
def test_the_variant_generator_carries_max_concurrent(algorithm: str) -> None:
    space = parse_space(
        {"x": {"grid": [1, 2]}} if algorithm == "grid" else {"x": {"uniform": [0.0, 1.0]}}
    )
    capped = build_search(
        SearchSettings(algorithm=algorithm, max_concurrent=2), FifoSettings(), space=space, stop={}
    )
    assert capped.search_alg.max_concurrent == 2
    free = build_search(SearchSettings(algorithm=algorithm), FifoSettings(), space=space, stop={})
    assert free.search_alg.max_concurrent == 0  # Ray's "no limit"


@pytest.mark.usefixtures("ray_instance")
def test_max_concurrent_one_runs_random_trials_one_after_another(
    write_spec, tmp_path: Path
) -> None:
    """The trials wait for each other (`Sleeper`): without the cap, the 2 CPUs would run two
    side by side however the workers' start-up is timed; with it, never."""
    spec = write_spec(
        f"""
name: capped
trainable: tests.search.test_concurrency:Sleeper
metric: score
mode: max
space: {{x: {{uniform: [0.0, 1.0]}}, sleep: 0.3, meet: '{tmp_path / "meet"}'}}
search: {{algorithm: random, num_samples: 3, seed: 0, max_concurrent: 1}}
resources: {{cpu: 1}}
stop: {{training_iteration: 2}}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    exp = tmp_path / "capped"
    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet")
    assert len(trials) == 3 and (trials["status"] == "TERMINATED").all()
    assert most_at_once(iterations) == 1, iterations[["trial_id", "began", "ended"]]


_STARTED: set[int] = set()  # worker processes that paid their start-up


class Sleeper:
    """A step-class trainable that reports when each step began and ended (wall clock) and
    checkpoints, so PBT can use it.

    Its first setup in a worker process takes `STARTUP_S` (as importing torch would). A
    trial's first step then marks its arrival in the folder `config["meet"]` and waits until
    a second trial has arrived, at most `WAIT_S`; every step sleeps `config["sleep"]`.

    With several trials let through at once, their workers start together, so the second
    trial arrives while the first waits, however slowly the loaded machine starts workers.
    Ray 2.60 with a bare Searcher starts the next trial's worker only once the first trial
    runs (its setup done): the second arrives more than `STARTUP_S` later, after the
    first's wait has run out, and the freed worker is then given the next trial (the one
    starting is dropped), so the trials never overlap. The wait never makes an overlap on
    its own: a trial that is not let through never arrives.
    """

    STARTUP_S = 5.0
    WAIT_S = 4.0

    def setup(self, config: dict[str, Any]) -> None:
        if os.getpid() not in _STARTED:
            time.sleep(self.STARTUP_S)
            _STARTED.add(os.getpid())
        numbers = [v for v in config.values() if isinstance(v, float)]
        self.value = sum(numbers)
        self.sleep = float(config["sleep"])
        self.meet = Path(config["meet"])
        self.steps = 0

    def step(self) -> dict[str, Any]:
        began = time.time()
        if self.steps == 0:
            self.meet.mkdir(exist_ok=True)
            (self.meet / uuid.uuid4().hex).touch()
            while len(list(self.meet.iterdir())) < 2 and time.time() < began + self.WAIT_S:
                time.sleep(0.05)
        time.sleep(self.sleep)
        self.steps += 1
        return {"score": self.value * self.steps, "began": began, "ended": time.time()}

    def save(self, directory: str) -> None:
        Path(directory, "steps").write_text(str(self.steps))

    def restore(self, directory: str) -> None:
        self.steps = int(Path(directory, "steps").read_text())


PARALLEL_SEARCHES = {
    "random": "{algorithm: random, num_samples: 4, seed: 0}",
    "grid": "{algorithm: grid}",
    "optuna-tpe": "{algorithm: optuna, num_samples: 4, seed: 0, n_initial_points: 2}",
    "optuna-cmaes": (
        "{algorithm: optuna, sampler: cmaes, num_samples: 4, seed: 0, n_initial_points: 2}"
    ),
    "hyperopt": "{algorithm: hyperopt, num_samples: 4, seed: 0, n_initial_points: 2}",
    "optuna-repeat": "{algorithm: optuna, num_samples: 2, repeat: 2, seed: 0}",
    "conditional": "{algorithm: optuna, num_samples: 4, seed: 0, n_initial_points: 2}",
    "pbt": "{algorithm: pbt, num_samples: 4, seed: 0, pbt: {perturbation_interval: 1}}",
}
SPACES = {
    "grid": "x: {grid: [0.1, 0.2, 0.3, 0.4]}",
    "conditional": "kind: {choice: {a: {x: {uniform: [0.0, 1.0]}}, b: {y: {uniform: [0.0, 1.0]}}}}",
}


@pytest.mark.usefixtures("ray_instance")
@pytest.mark.parametrize("case", list(PARALLEL_SEARCHES))
def test_every_searcher_runs_two_trials_at_once_on_two_cpus(
    case: str, write_spec, tmp_path: Path
) -> None:
    """The local Ray has 2 CPUs and each trial asks for 1: two trials run side by side,
    whatever chooses the configs (Ray runs a bare model-based searcher one trial at a time)."""
    space = SPACES.get(case, "x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}")
    spec = write_spec(
        f"""
name: side_by_side
trainable: tests.search.test_concurrency:Sleeper
metric: score
mode: max
space: {{{space}, sleep: 0.3, meet: '{tmp_path / "meet"}'}}
search: {PARALLEL_SEARCHES[case]}
resources: {{cpu: 1}}
stop: {{training_iteration: 2}}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    exp = tmp_path / "side_by_side"
    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet")
    assert len(trials) == 4 and (trials["status"] == "TERMINATED").all()
    assert most_at_once(iterations) == 2, iterations[["trial_id", "began", "ended"]]


@pytest.mark.parametrize(
    ("settings", "space"),
    [
        ({"algorithm": "random"}, {"x": {"uniform": [0.0, 1.0]}}),
        ({"algorithm": "random", "repeat": 2}, {"x": {"uniform": [0.0, 1.0]}}),
        ({"algorithm": "grid"}, {"x": {"grid": [1, 2]}}),
        ({"algorithm": "pbt"}, {"x": {"uniform": [0.0, 1.0]}}),
        ({"algorithm": "hyperopt"}, {"x": {"uniform": [0.0, 1.0]}}),
        ({"algorithm": "optuna", "sampler": "qmc"}, {"x": {"uniform": [0.0, 1.0]}}),
        ({"algorithm": "random"}, {"k": {"choice": {"a": {"x": {"uniform": [0.0, 1.0]}}}}}),
    ],
)
def test_uses_searcher_says_what_build_search_gives(settings: dict, space: dict) -> None:
    """The runner caps Ray's pending trials for exactly the algorithms built as a Searcher."""
    from ray.tune.search import Searcher

    from tunefleet.search.algorithms import uses_searcher

    search_settings, parsed = SearchSettings(**settings), parse_space(space)
    built = build_search(
        search_settings, FifoSettings(), space=parsed, stop={}, metric="s", mode="max"
    )
    assert uses_searcher(search_settings, parsed) == isinstance(built.search_alg, Searcher)


SLEEPERS = """
name: {name}
trainable: tests.search.test_concurrency:Sleeper
metric: score
mode: max
space: {{x: {{uniform: [0.0, 1.0]}}, sleep: 0.3, meet: '{meet}'}}
search: {{algorithm: optuna, num_samples: {trials}, seed: 0, n_initial_points: 2}}
stop: {{training_iteration: {steps}}}
results: {{flush_every_s: 1}}
resources: {{cpu: {cpu}}}
"""


@pytest.mark.usefixtures("ray_instance")
def test_extended_trials_run_two_at_once(write_spec, tmp_path: Path) -> None:
    meet = tmp_path / "meet"
    spec = write_spec(SLEEPERS.format(name="grow", meet=meet, trials=2, steps=1, cpu=1))
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    shutil.rmtree(meet)  # the new trials wait for each other again
    assert main(["resume", str(tmp_path / "grow"), "--extend", "4"]) == 0
    trials = pd.read_parquet(tmp_path / "grow" / "trials.parquet")
    iterations = pd.read_parquet(tmp_path / "grow" / "iterations.parquet")
    assert len(trials) == 6 and (trials["status"] == "TERMINATED").all()
    new = iterations[iterations["trial_id"].isin(trials["trial_id"].iloc[2:])]
    assert most_at_once(new) == 2, new[["trial_id", "began", "ended"]]


def test_a_killed_run_resumes_two_trials_at_once(tmp_path: Path) -> None:
    """`kill -9` of the driver (and the Ray it started) mid-run, then `tunefleet resume`:
    the trials that start after the resume run side by side too."""
    meet = tmp_path / "meet"
    spec = tmp_path / "killed.yaml"
    # The command's own Ray takes every CPU of the machine: half of them a trial, so that
    # exactly 2 fit on any machine.
    cpus = os.cpu_count() or 2
    spec.write_text(SLEEPERS.format(name="killed", meet=meet, trials=8, steps=3, cpu=cpus / 2))
    exp = tmp_path / "results" / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    driver = subprocess.Popen(
        [TUNEFLEET, "run", str(spec), "--storage", str(tmp_path / "results")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and done < 2:
            time.sleep(0.5)
            if (exp / "trials.parquet").exists():
                trials = pd.read_parquet(exp / "trials.parquet")
                done = int((trials["status"] == "TERMINATED").sum())
        assert done >= 2, "the run did not get far enough to be killed"
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    killed_at = time.time()
    shutil.rmtree(meet)  # trials started after the resume wait for each other again
    proc = subprocess.run(
        [TUNEFLEET, "resume", str(exp)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet")
    assert len(trials) == 8 and (trials["status"] == "TERMINATED").all(), proc.stderr
    started_after = iterations.groupby("trial_id")["began"].min() > killed_at
    new = iterations[iterations["trial_id"].isin(started_after[started_after].index)]
    assert new["trial_id"].nunique() >= 2, "no new trials started after the resume"
    assert most_at_once(new) == 2, new[["trial_id", "began", "ended"]]
    per_trial = f"{cpus / 2:g} CPU" + ("" if cpus <= 2 else "s")
    assert f"up to 2 trials at once: {cpus} CPUs on 1 node, {per_trial} per trial\n" in (
        proc.stderr
    )
