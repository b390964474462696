"""`tunefleet run` end to end on a real Ray: the Parquet files hold exactly what was reported."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support.specs import spec_yaml
from tests.support.trainables import expected_score
from tunefleet.experiments import read_metadata
from tunefleet.experiments.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_instance")]

SPEC = spec_yaml(
    name="linear",
    space={"x": {"uniform": [0.0, 1.0]}, "offset": {"choice": [0, 10]}, "steps": 4},
    search={"algorithm": "random", "num_samples": 5, "seed": 3},
)


def test_run_writes_every_reported_result(write_spec, tmp_path: Path, capsys) -> None:
    spec = write_spec(SPEC)
    assert main(["run", str(spec), "--storage", str(tmp_path / "results")]) == 0
    exp = tmp_path / "results" / "linear"
    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet")

    assert len(trials) == 5 and trials["trial_id"].is_unique
    assert list(trials.columns[:2]) == ["trial_id", "status"]
    for _, row in trials.iterrows():
        config = {
            "x": row["config/x"],
            "offset": row["config/offset"],
            "steps": row["config/steps"],
        }
        assert row["status"] == "TERMINATED"
        assert row["iterations"] == 4
        assert row["score"] == pytest.approx(expected_score(config, 4))
        assert row["best/score"] == pytest.approx(expected_score(config, 4))
        assert row["loss"] == pytest.approx(0.25)
        assert row["group/step2"] == 8
        assert row["time_total_s"] > 0
        assert pd.isna(row["error"])
    assert trials["node_id"].notna().all() and iterations_node_ids_match(exp)
    assert trials["config/offset"].dtype == "int64"
    assert trials["config/x"].dtype == "float64"

    assert len(iterations) == 5 * 4
    assert not iterations.duplicated(["trial_id", "training_iteration"]).any()
    configs = trials.set_index("trial_id")
    for _, row in iterations.iterrows():
        c = configs.loc[row["trial_id"]]
        config = {"x": c["config/x"], "offset": c["config/offset"]}
        step = row["training_iteration"]
        assert row["score"] == pytest.approx(expected_score(config, step))
        assert row["loss"] == pytest.approx(1.0 / step)
        assert row["group/step2"] == 2 * step
    assert iterations["training_iteration"].dtype == "int64"

    meta = read_metadata(exp / "trials.parquet")
    assert meta["spec"]["trainable"] == "tests.support.trainables:linear"
    assert meta["versions"]["ray"].startswith("2.60")
    assert meta["versions"]["tunefleet"]
    assert meta["metric"] == "score" and meta["mode"] == "max"
    assert meta["trials_at_once"]["cap"] == 2 and meta["trials_at_once"]["nodes"] == 1
    assert (
        json.loads(pq.read_schema(exp / "iterations.parquet").metadata[b"tunefleet"])["experiment"]
        == "linear"
    )

    out = capsys.readouterr()
    best = trials.loc[trials["best/score"].idxmax()]
    assert f"best score = {best['best/score']:.4g} (trial {best['trial_id']})" in out.out
    assert "5/5 done" in out.err
    # The session's Ray has 2 CPUs; each trial asks for 1 (the default).
    assert "\nup to 2 trials at once: 2 CPUs on 1 node, 1 CPU per trial\n[0:00:" in "\n" + out.err


def test_failed_trials_are_recorded_and_the_others_finish(write_spec, tmp_path: Path) -> None:
    spec = write_spec(
        """
name: failing
trainable: tests.support.trainables:fails_when_large
metric: score
mode: max
space: {x: {grid: [0.2, 0.9]}}
search: {algorithm: grid}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    trials = pd.read_parquet(tmp_path / "failing" / "trials.parquet").set_index("config/x")
    assert trials.loc[0.9, "status"] == "ERROR"
    assert trials.loc[0.9, "error"] == "ValueError: x too large: 0.9"
    assert trials.loc[0.9, "iterations"] == 1
    assert trials.loc[0.2, "status"] == "TERMINATED"
    assert trials.loc[0.2, "iterations"] == 3
    assert pd.isna(trials.loc[0.2, "error"])


def test_all_trials_failing_exits_1(write_spec, tmp_path: Path) -> None:
    spec = write_spec(
        """
name: allfail
trainable: tests.support.trainables:fails_when_large
metric: score
mode: max
space: {x: {grid: [0.7, 0.9]}}
search: {algorithm: grid}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 1
    assert len(pd.read_parquet(tmp_path / "allfail" / "trials.parquet")) == 2


def test_an_existing_experiment_is_not_overwritten_by_accident(
    write_spec, tmp_path: Path, capsys
) -> None:
    spec = write_spec(SPEC.replace("num_samples: 5", "num_samples: 1"))
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    first = pd.read_parquet(tmp_path / "linear" / "trials.parquet")["trial_id"].tolist()
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 2
    assert "already holds an experiment; pass --overwrite" in capsys.readouterr().err
    assert pd.read_parquet(tmp_path / "linear" / "trials.parquet")["trial_id"].tolist() == first
    assert (
        main(
            [
                "run",
                str(spec),
                "--storage",
                str(tmp_path),
                "--overwrite",
                "--set",
                "search.num_samples=2",
            ]
        )
        == 0
    )
    assert len(pd.read_parquet(tmp_path / "linear" / "trials.parquet")) == 2
    assert main(["run", str(spec), "--storage", str(tmp_path), "--name", "linear-2"]) == 0
    assert (tmp_path / "linear-2" / "trials.parquet").exists()


def _tree(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def test_a_run_that_fails_before_its_first_trial_leaves_the_folder_as_found(
    write_spec, tmp_path: Path, capsys
) -> None:
    """Ray is up when the tuner fails (the trainable cannot be serialized): the results
    folder is as before, so the same command reruns without --overwrite."""
    storage = tmp_path / "results"
    bad = write_spec(SPEC.replace(":linear", ":holds_a_lock"), "bad.yaml")
    assert main(["run", str(bad), "--storage", str(storage)]) == 1
    assert "The provided trainable is not serializable" in capsys.readouterr().err
    assert not storage.exists()
    good = write_spec(SPEC.replace("num_samples: 5", "num_samples: 1"))
    assert main(["run", str(good), "--storage", str(storage)]) == 0  # no --overwrite needed
    before = _tree(storage)
    assert main(["run", str(bad), "--storage", str(storage), "--overwrite"]) == 1
    assert _tree(storage) == before  # the experiment it was to replace is back, as it was


@pytest.mark.core
def test_quickstart_reaches_its_accuracy(tmp_path: Path, monkeypatch, capsys) -> None:
    """The shipped quickstart: Optuna TPE + ASHA on a real PyTorch MLP over digits; then the
    README's pandas lines, as written, read its results."""
    repo = Path(__file__).resolve().parents[2]
    assert (
        main(
            [
                "run",
                str(repo / "experiments" / "quickstart.yaml"),
                "--storage",
                str(tmp_path / "results"),
            ]
        )
        == 0
    )
    trials = pd.read_parquet(tmp_path / "results" / "quickstart" / "trials.parquet")
    assert len(trials) >= 16
    assert (trials["status"] == "TERMINATED").all()
    assert trials["best/val_accuracy"].max() >= 0.96
    # ASHA stopped some trials before the 20-epoch budget; none ran past it.
    assert trials["iterations"].max() == 20 and trials["iterations"].min() < 20
    iterations = pd.read_parquet(tmp_path / "results" / "quickstart" / "iterations.parquet")
    assert {"train_loss", "val_loss", "val_accuracy", "lr"} <= set(iterations.columns)
    assert len(iterations) == trials["iterations"].sum()

    readme = (repo / "README.md").read_text()
    snippet = re.search(r"Read the results in pandas:\n\n```python\n(.*?)```", readme, re.S)
    assert snippet is not None
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    exec(compile(snippet.group(1), "README.md", "exec"), {})  # our own README, not a spec
    printed = capsys.readouterr().out
    assert f"{trials['best/val_accuracy'].max():.6f}" in printed


def iterations_node_ids_match(exp: Path) -> bool:
    """Every result names the Ray node it ran on, the same one its trial row names."""
    import ray

    trials = pd.read_parquet(exp / "trials.parquet").set_index("trial_id")
    iterations = pd.read_parquet(exp / "iterations.parquet")
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    return bool(
        (iterations["node_id"].isin(alive)).all()
        and (iterations.groupby("trial_id")["node_id"].last() == trials["node_id"]).all()
    )
