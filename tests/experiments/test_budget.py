"""`search.budget_cpu_hours`: Ray Tune's Stopper ends the search when trials used the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.specs import spec_yaml
from tunefleet.experiments.cli import main
from tunefleet.search.budget import TrialTimeBudget, build_stop

SPEC = spec_yaml(
    name="budget",
    trainable="tests.support.trainables:slow_counter",
    space={"x": {"uniform": [0.0, 1.0]}, "steps": 20, "sleep": 0.2},
    search={
        "algorithm": "random",
        "num_samples": 6,
        "seed": 0,
        "max_concurrent": 2,
        "budget_cpu_hours": 0.0005,
    },
    scheduler={"name": "asha", "grace_period": 20},
    stop={"training_iteration": 20},
)


def test_budget_stopper_counts_trial_time_times_cpus() -> None:
    assert build_stop(
        {"training_iteration": 3}, cpu_hours=None, gpu_hours=None, cpus=1, gpus=0
    ) == {"training_iteration": 3}
    stopper = build_stop({"training_iteration": 3}, cpu_hours=0.001, gpu_hours=None, cpus=2, gpus=0)
    assert isinstance(stopper, TrialTimeBudget)
    assert stopper("a", {"time_total_s": 1.0, "training_iteration": 1}) is False
    assert stopper("a", {"time_total_s": 1.0, "training_iteration": 3}) is True  # the bound
    assert not stopper.stop_all()
    stopper("b", {"time_total_s": 0.8, "training_iteration": 1})
    assert stopper.used_cpu_hours == pytest.approx(3.6 / 3600)
    assert stopper.stop_all()  # 3.6 CPU-seconds >= 0.001 CPU-hours


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_tiny_budget_ends_the_search_and_keeps_results(
    write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(SPEC)
    code = main(["run", str(spec), "--storage", str(tmp_path / "results")])
    out, err = capsys.readouterr()
    trials = pd.read_parquet(tmp_path / "results" / "budget" / "trials.parquet")
    used = trials["time_total_s"].fillna(0).sum()
    # 0.0005 CPU-hours = 1.8 CPU-seconds; a full run would take 6 x 4 s = 24 s.
    assert 1.8 <= used < 10, (code, out, err, trials[["status", "time_total_s"]])
    assert trials["iterations"].max() < 20
    assert code == 0, (out, err)
