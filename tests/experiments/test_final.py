"""The final evaluation on held-out data: `final:` in `tunefleet run`, `tunefleet evaluate`,
the wrappers' held-out protocol and the block `tunefleet show` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.support.specs import spec_dict
from tunefleet.experiments.analysis.baseline_and_final import final_text
from tunefleet.experiments.cli import main
from tunefleet.experiments.results.files import FINAL_FILE
from tunefleet.experiments.results.parquet_io import read_metadata
from tunefleet.experiments.spec.optional_sections import FINAL_SEED_OFFSET
from tunefleet.trainables.examples.digits import mlp_trainable, splits
from tunefleet.trainables.sklearn import SklearnTrainable

TORCH_SPEC = """
name: final
trainable: tunefleet.trainables.examples.digits:mlp_trainable
metric: val_accuracy
mode: max
space:
  lr: {loguniform: [1.0e-3, 1.0e-2]}
  hidden: {choice: [16, 32]}
  epochs: 3
search: {algorithm: random, num_samples: 3, seed: 5}
scheduler: {name: asha, grace_period: 1}
stop: {training_iteration: 3}
final: {top_k: 2, seeds: 2}
"""


def test_torch_evaluate_is_seeded_and_scores_both_splits() -> None:
    config = {"lr": 3e-3, "hidden": 32, "epochs": 3, "seed": 1}
    first = mlp_trainable.evaluate(config, seed=11)
    again = mlp_trainable.evaluate(config, seed=11)
    other = mlp_trainable.evaluate(config, seed=12)
    assert first == again  # same seed, same model, same scores
    assert first != other
    assert set(first) == {
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
        "epochs",
        "workers",
    }
    assert first["workers"] == 1
    assert 0.8 < first["val_accuracy"] <= 1 and 0.8 < first["test_accuracy"] <= 1
    # The test split is held out: disjoint from what the search sees, and 20% of the rows.
    parts = splits()
    assert len(parts["test"][0]) == 360
    seen = {row.tobytes() for part in ("train", "val") for row in parts[part][0]}
    assert not any(row.tobytes() in seen for row in parts["test"][0])
    assert len(mlp_trainable.data()[0]) + len(mlp_trainable.data()[1]) == 1797 - 360


def test_sklearn_search_never_sees_the_test_rows() -> None:
    wrapper = SklearnTrainable(estimator="sklearn.svm:SVC", data="iris", cv=3, test_size=0.2)
    x, _, x_test, y_test = wrapper.split()
    assert (len(x), len(x_test)) == (120, 30)
    assert np.bincount(y_test).tolist() == [10, 10, 10]  # stratified
    scores = wrapper.evaluate({"C": 1.0}, seed=3)
    assert set(scores) == {"val_score", "test_score"}
    assert 0.8 < scores["val_score"] <= 1 and 0.8 < scores["test_score"] <= 1
    assert wrapper.held_out_metric("cv_score_mean") == "score"
    with pytest.raises(Exception, match=r"test_size: a fraction of the rows in \(0, 1\), got 1.5"):
        SklearnTrainable(estimator="sklearn.svm:SVC", data="iris", test_size=1.5)
    no_test = SklearnTrainable(estimator="sklearn.svm:SVC", data="iris")
    with pytest.raises(Exception, match="test_size: not set, so there is no test split"):
        no_test.evaluate({}, seed=0)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_run_with_final_writes_final_parquet_and_show_prints_it(
    write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(TORCH_SPEC)
    storage = tmp_path / "results"
    assert main(["run", str(spec), "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "final evaluation on the held-out test split (2 seeds per config" in out
    exp = storage / "final"
    trials = pd.read_parquet(exp / "trials.parquet")
    assert (trials["config/seed"] == 5).all()  # the search seed, in every trial's config
    final = pd.read_parquet(exp / FINAL_FILE)
    assert len(final) == 4 and sorted(final["rank"].unique()) == [1, 2]
    assert (
        sorted(final["seed"])
        == [5 + FINAL_SEED_OFFSET, 5 + FINAL_SEED_OFFSET] + [6 + FINAL_SEED_OFFSET] * 2
    )
    best = trials.sort_values("best/val_accuracy", ascending=False).iloc[:2]
    assert final.groupby("rank")["trial_id"].first().tolist() == best["trial_id"].tolist()
    for _, group in final.groupby("rank"):
        assert group["val_mean"].iloc[0] == pytest.approx(group["val_accuracy"].mean())
        assert group["test_std"].iloc[0] == pytest.approx(np.std(group["test_accuracy"]))
        gap = group["val_mean"].iloc[0] - group["test_mean"].iloc[0]
        assert group["gap"].iloc[0] == pytest.approx(gap)
        assert bool(group["overfit"].iloc[0]) == (gap > 0.02)
    assert read_metadata(exp / FINAL_FILE)["held_out"] == "accuracy"

    assert main(["show", str(exp)]) == 0
    shown = capsys.readouterr().out
    assert shown.count("final evaluation on the held-out test split") == 1
    assert final_text(exp) in shown

    # `tunefleet evaluate` reruns it with other settings; the same seeds give the same scores.
    assert main(["evaluate", str(exp), "--top", "1", "--seeds", "2"]) == 0
    again = pd.read_parquet(exp / FINAL_FILE)
    assert len(again) == 2
    first = final[final["rank"] == 1].sort_values("seed")["test_accuracy"].tolist()
    assert again.sort_values("seed")["test_accuracy"].tolist() == first


def test_final_needs_a_test_split(write_spec: Any, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(
        """
name: nofinal
trainable: tests.support.trainables:linear
metric: score
mode: max
space: {x: {uniform: [0.0, 1.0]}}
final: {}
"""
    )
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "final: trainable 'tests.support.trainables:linear' has no held-out test split" in err
    with pytest.raises(Exception, match=r"final\.top_k: input should be greater than or equal"):
        from tunefleet.experiments.spec.loading import validate_spec

        validate_spec(spec_dict(final={"top_k": 0}))


def test_evaluate_refuses_a_folder_without_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert f"{tmp_path} has no spec.yaml; pass the folder" in capsys.readouterr().err
