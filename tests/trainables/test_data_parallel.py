"""Data-parallel trials (`resources.workers`): each trial trains on a gang of Ray Train
workers (gloo on these CPUs), under ASHA and PBT, through a worker's death, and in the
final evaluation. What is checked is what a user relies on: every rank trained on its own
shard, the ranks' weights agree after every step (gradients were synchronised), and a
restored gang continues from the checkpointed step on every worker.

The session's Ray has 2 CPUs: a gang of 2 workers of 0.5 CPU each, so two trials fit.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tests.support.specs import spec_yaml
from tunefleet.experiments.cli import main
from tunefleet.trainables.examples.digits import data, mlp_trainable

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_instance")]

GANG = {"workers": 2, "cpu": 0.5}
DIGITS = "tunefleet.trainables.examples.digits:mlp_trainable"


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], **spec: object) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(spec_yaml(**spec))
    assert main(["run", str(path), "--storage", str(tmp_path / "results")]) == 0
    return tmp_path / "results" / str(spec["name"])


def _ranks_agree(iterations: pd.DataFrame) -> None:
    """Both ranks reported every result, each on its own half of the training set, and
    their weights are equal after every epoch (they would differ without DDP's averaging:
    the shards differ)."""
    half = math.ceil(len(data()[0]) / 2)
    assert (iterations["workers/0/samples"] == half).all()
    assert (iterations["workers/1/samples"] == half).all()
    assert (iterations["workers/0/weights"] == iterations["workers/1/weights"]).all()
    assert iterations["workers/0/weights"].nunique() > 1  # the weights did change


@pytest.mark.core
def test_two_worker_trials_train_data_parallel_under_asha(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = _run(
        tmp_path,
        capsys,
        name="ddp_asha",
        trainable=DIGITS,
        metric="val_accuracy",
        mode="max",
        # In this order, 2 at once: the third, hopeless one meets two results at each rung.
        space={"lr": {"grid": [3e-2, 1e-2, 1e-5]}, "hidden": 32, "epochs": 4},
        search={"algorithm": "grid"},
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
        stop={"training_iteration": 4},
        final={"top_k": 1, "seeds": 1},
        resources=GANG,
    )
    err = capsys.readouterr().err
    # The status line counts each trial's whole gang: 2 gangs of 2 x 0.5 CPU on 2 CPUs.
    assert "up to 2 trials at once: 2 CPUs on 1 node, 2 workers of 0.5 CPU per trial" in err
    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet")
    assert list(trials["status"]) == ["TERMINATED"] * 3
    _ranks_agree(iterations)
    # 2 trials at once, as the status line says. Such a trial reserves nothing itself (its
    # gang does), so without the grid search's cap the third would have started at once and
    # waited there for a gang (3 running), or taken the second's gang and run beside the
    # first, meeting no results at the rungs. It started once one of the first two finished.
    assert "· 3 running" not in err
    spans = iterations.groupby("trial_id")["timestamp"].agg(["min", "max"])
    third = trials["trial_id"].iloc[2]
    assert spans.loc[third, "min"] >= spans.drop(index=third)["max"].min(), spans
    # ASHA stopped the hopeless trial at a rung; the best one trained its 4 epochs and learnt.
    lrs = trials.set_index("trial_id")["config/lr"]
    epochs = iterations.groupby(iterations["trial_id"].map(lrs))["epoch"].max()
    assert epochs[1e-5] < 3 and epochs.max() == 3, epochs
    assert trials["best/val_accuracy"].max() > 0.9
    # The final evaluation retrained the best config (on a gang too: see the next test).
    final = pd.read_parquet(exp / "final.parquet")
    assert len(final) == 1 and final["test_accuracy"].iloc[0] > 0.8


def test_pbt_exploits_restore_a_two_worker_checkpoint_on_every_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exp = _run(
        tmp_path,
        capsys,
        name="ddp_pbt",
        trainable=DIGITS,
        metric="val_accuracy",
        mode="max",
        space={
            "lr": {"loguniform": [1e-4, 1e-1]},
            "hidden": 32,
            "epochs": 4,
            "checkpoint_every": 1,
        },
        search={
            "algorithm": "pbt",
            "num_samples": 2,
            "seed": 0,
            "pbt": {"perturbation_interval": 2, "quantile_fraction": 0.5},
        },
        stop={"training_iteration": 4},
        resources=GANG,
    )
    iterations = pd.read_parquet(exp / "iterations.parquet")
    exploits = pd.read_parquet(exp / "exploits.parquet")
    assert len(exploits) >= 1
    _ranks_agree(iterations)
    for exploit in exploits.itertuples(index=False):
        rows = iterations[iterations["trial_id"] == exploit.trial_id]
        resumed = rows[rows["restored_from"] == exploit.cloned_from].iloc[0]
        # Both workers loaded the same checkpoint of the donor, one it saved at or after
        # the iteration PBT logged, and training went on from the epoch after it.
        restored = resumed["workers/0/restored_epoch"]
        assert resumed["workers/1/restored_epoch"] == restored
        assert resumed["epoch"] == restored + 1
        assert restored >= exploit.cloned_iteration - 1
        donor = iterations[iterations["trial_id"] == exploit.cloned_from]
        assert restored in set(donor["epoch"])


def test_a_killed_worker_retries_the_trial_from_its_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain function trained with the helpers (`shard`, `prepare_model`): rank 1 kills
    its own process in step 3, once; Tune retries the trial from its last checkpoint."""
    marker = tmp_path / "killed"
    exp = _run(
        tmp_path,
        capsys,
        name="ddp_kill",
        trainable="tests.support.gang_trainables:regression",
        metric="loss",
        mode="min",
        space={
            "lr": 0.1,
            "steps": 6,
            "kill_at": 3,
            "kill_marker": str(marker),
            "results": str(tmp_path / "results"),
        },
        search={"algorithm": "random", "num_samples": 1, "seed": 0},
        failure={"max_failures": 1},
        resources=GANG,
    )
    assert marker.exists()  # the worker did die
    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet").sort_values("training_iteration")
    assert list(trials["status"]) == ["TERMINATED"]
    # The retry loaded the latest checkpoint Tune held, on both workers, and went on from
    # the next step: every step reported once. (Which step that is depends on how far the
    # first attempt's reports had reached Tune when rank 1 died in step 3.)
    assert list(iterations["step"]) == [0, 1, 2, 3, 4, 5]
    restored = iterations[iterations["workers/0/restored_step"].notna()]
    assert len(restored) == 1, iterations
    row = restored.iloc[0]
    assert row["workers/0/restored_step"] == row["workers/1/restored_step"] == row["step"] - 1
    assert row["step"] <= 3
    # Interleaved shards of 48 rows each; equal weights after every step.
    assert (iterations["workers/0/samples"] == 48).all()
    assert (iterations["workers/1/samples"] == 48).all()
    assert (iterations["workers/0/first_index"] == 0).all()
    assert (iterations["workers/1/first_index"] == 1).all()
    assert (iterations["workers/0/weight"] == iterations["workers/1/weight"]).all()
    assert (iterations["workers/0/size"] == 2).all()


def test_evaluate_retrains_on_a_gang() -> None:
    """What the final evaluation of a multi-worker spec runs: the retraining is
    data-parallel too, and rank 0 scores both splits."""
    scores = mlp_trainable.evaluate(
        {"lr": 1e-2, "hidden": 32, "epochs": 3}, seed=0, cpus=0.5, workers=2
    )
    assert scores["workers"] == 2 and scores["epochs"] == 3
    assert scores["test_accuracy"] > 0.85
