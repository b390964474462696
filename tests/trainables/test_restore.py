"""Checkpoints carry the full state: a restored trial continues exactly where it stopped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tunefleet.experiments.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_instance")]


def test_a_restored_pytorch_trial_reports_what_an_uninterrupted_one_does(
    write_spec, tmp_path: Path
) -> None:
    marker = tmp_path / "failed-once"
    # 1078 training samples in batches of 64 make 17 forward calls an epoch, plus one for
    # validation: call 60 is in the middle of the fourth epoch.
    spec = write_spec(
        f"""
name: restore
trainable: tests.support.flaky:flaky_digits
metric: val_accuracy
mode: max
space:
  fail_marker: {{grid: ["", "{marker}"]}}
  fail_at: 60
  lr: 0.003
  hidden: 48
  dropout: 0.2
  batch_size: 64
  epochs: 6
  seed: 3
  checkpoint_every: 1
search: {{algorithm: grid}}
failure: {{max_failures: 1}}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path / "results")]) == 0
    assert marker.exists(), "the failure was injected"
    trials = pd.read_parquet(tmp_path / "results" / "restore" / "trials.parquet")
    iterations = pd.read_parquet(tmp_path / "results" / "restore" / "iterations.parquet")
    assert (trials["status"] == "TERMINATED").all() and (trials["iterations"] == 6).all()
    failed = trials.loc[trials["config/fail_marker"] != "", "trial_id"].item()
    clean = trials.loc[trials["config/fail_marker"] == "", "trial_id"].item()

    resumed = iterations[iterations["trial_id"] == failed]
    assert not resumed.duplicated("training_iteration").any()
    assert resumed.loc[resumed["restored_from"].notna(), "training_iteration"].tolist() == [4]
    assert (resumed["restored_from"].dropna() == failed).all()

    columns = ["train_loss", "val_loss", "val_accuracy"]
    a = resumed.sort_values("training_iteration")[columns].to_numpy()
    b = (
        iterations[iterations["trial_id"] == clean]
        .sort_values("training_iteration")[columns]
        .to_numpy()
    )
    assert a.shape == b.shape == (6, 3)
    assert a == pytest.approx(b, rel=1e-6, abs=1e-7)


def test_a_plain_class_is_a_trainable_and_resumes_from_its_checkpoint(
    write_spec, tmp_path: Path
) -> None:
    marker = tmp_path / "class-failed"
    spec = write_spec(
        f"""
name: counter
trainable: tests.support.trainables:Counter
metric: value
mode: max
space:
  start: {{grid: [0, 10]}}
  rate: 2
  fail_at: 3
  fail_marker: "{marker}"
search: {{algorithm: grid}}
stop: {{training_iteration: 5}}
failure: {{max_failures: 2}}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    assert marker.exists()
    trials = pd.read_parquet(tmp_path / "counter" / "trials.parquet")
    iterations = pd.read_parquet(tmp_path / "counter" / "iterations.parquet")
    assert (trials["status"] == "TERMINATED").all()
    for _, trial in trials.iterrows():
        rows = iterations[iterations["trial_id"] == trial["trial_id"]].sort_values(
            "training_iteration"
        )
        assert rows["training_iteration"].tolist() == [1, 2, 3, 4, 5]
        # Restored from the step-2 checkpoint: the counter goes on, not from zero.
        assert rows["steps"].tolist() == [1, 2, 3, 4, 5]
        assert rows["value"].tolist() == [trial["config/start"] + 2 * s for s in range(1, 6)]
        assert trial["node_id"]


def test_pbt_refuses_a_trainable_that_cannot_checkpoint(write_spec) -> None:
    from tunefleet.experiments.spec.loading import load_spec
    from tunefleet.experiments.spec.plan import make_plan
    from tunefleet.trainables import TrainableError

    for trainable in ("tests.support.trainables:NoCheckpoints", "tests.support.trainables:linear"):
        spec = write_spec(
            f"name: p\ntrainable: {trainable}\nmetric: score\nmode: max\n"
            "space: {x: {uniform: [0, 1]}}\nsearch: {algorithm: pbt}\n"
        )
        with pytest.raises(
            TrainableError,
            match=r"^trainable: pbt restores trials from each other's checkpoints, but",
        ):
            make_plan(*load_spec(spec))
