"""`tunefleet export`, many experiments as one dataset, the documented schema, wall time.

Two real runs share one storage root: `raw`, made by plain Ray Tune with its default loggers
(so every trial has Ray's result.json), and `tf`, made by `tunefleet run`.
"""

from __future__ import annotations

import glob
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.support.specs import spec_yaml
from tunefleet.experiments import read_metadata
from tunefleet.experiments.analysis.experiment import load
from tunefleet.experiments.cli import main
from tunefleet.experiments.results.export import ExportError, export_experiment

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "experiments" / "SCHEMA.md"

TF_SPEC = spec_yaml(
    name="tf",
    space={"x": {"uniform": [0.0, 1.0]}, "steps": 3},
    search={"algorithm": "random", "num_samples": 3, "seed": 0},
)


@pytest.fixture(scope="module")
def root(ray_instance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A storage root holding `raw` (plain Ray Tune, exported) and `tf` (tunefleet)."""
    from ray import tune

    from tests.support.export_trainables import steps

    base = tmp_path_factory.mktemp("export")
    results = base / "results"
    tuner = tune.Tuner(
        steps,
        param_space={"x": tune.grid_search([0.2, 0.5, 0.9]), "opt": {"lr": 0.1}},
        tune_config=tune.TuneConfig(metric="score", mode="max", reuse_actors=True),
        run_config=tune.RunConfig(name="raw", storage_path=str(results), verbose=0),
    )
    grid = tuner.fit()
    base.joinpath("grid").mkdir()
    for result in grid:
        trial_id = result.metrics["trial_id"]
        result.metrics_dataframe.to_parquet(base / "grid" / f"{trial_id}.parquet")
    spec = base / "tf.yaml"
    spec.write_text(TF_SPEC)
    assert main(["run", str(spec), "--storage", str(results)]) == 0
    return results


@pytest.fixture(scope="module")
def raw(root: Path) -> Path:
    """The plain Ray Tune run, exported through the CLI."""
    assert main(["export", str(root / "raw"), "--metric", "score", "--mode", "max"]) == 0
    return root / "raw"


def histories(root: Path) -> dict[str, pd.DataFrame]:
    """Ray's own per-trial histories (`Result.metrics_dataframe`) of the raw run."""
    return {p.stem: pd.read_parquet(p) for p in sorted((root.parent / "grid").glob("*.parquet"))}


@pytest.mark.slow
def test_export_of_a_plain_ray_tune_run_matches_its_results(raw: Path, root: Path) -> None:
    trials = pd.read_parquet(raw / "trials.parquet")
    iterations = pd.read_parquet(raw / "iterations.parquet")
    ray_histories = histories(root)
    assert sorted(trials["trial_id"]) == sorted(ray_histories)
    assert set(trials["experiment"]) == set(iterations["experiment"]) == {"raw"}
    for trial_id, history in ray_histories.items():
        row = trials.set_index("trial_id").loc[trial_id]
        rows = iterations[iterations["trial_id"] == trial_id]
        assert rows["training_iteration"].tolist() == history["training_iteration"].tolist()
        assert rows["score"].tolist() == pytest.approx(history["score"].tolist())
        assert rows["count"].tolist() == history["count"].tolist()
        assert rows["group/twice"].tolist() == history["group/twice"].tolist()
        assert row["best/score"] == pytest.approx(history["score"].max())
        assert row["iterations"] == len(history)
        assert row["score"] == pytest.approx(history["score"].iloc[-1])
        x = row["config/x"]
        assert row["config/opt/lr"] == 0.1
        if x > 0.8:
            assert row["status"] == "ERROR"
            assert row["error"] == f"ValueError: x too large: {x}"
        else:
            assert row["status"] == "TERMINATED"
            assert pd.isna(row["error"])
    # Types as reported: ints stay ints, nested metrics flatten with `/`.
    schema = pq.read_schema(raw / "iterations.parquet")
    assert schema.field("training_iteration").type == pa.int64()
    assert schema.field("count").type == pa.int64()
    assert schema.field("group/twice").type == pa.int64()
    assert schema.field("score").type == pa.float64()
    meta = read_metadata(raw / "trials.parquet")
    assert (meta["experiment"], meta["metric"], meta["mode"]) == ("raw", "score", "max")
    assert "spec" not in meta
    assert 0 < meta["wall_s"] < 600
    exp = load(raw)  # the analysis reads an exported experiment like a tunefleet one
    assert exp.best()["config/x"] == 0.5


@pytest.mark.slow
def test_export_through_a_uri_and_refusing_to_replace(raw: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", str(raw), "--metric", "score", "--mode", "max"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "already has trials.parquet; pass --overwrite" in err
    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    uri = f"file://{copy}"
    args = ["export", uri, "--metric", "score", "--mode", "max", "--overwrite"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "exported 3 trials, 7 iteration rows" in captured.out
    # Not a folder tunefleet wrote: one line, before Ray's state is read.
    assert captured.err == (
        f"warning: {uri} holds no spec.yaml, so tunefleet did not write it; Ray's saved "
        "experiment state is unpickled, which can run code: export only folders you trust.\n"
    )
    for name in ("trials.parquet", "iterations.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(copy / name), pd.read_parquet(raw / name))


@pytest.mark.slow
def test_export_errors_are_one_line(root: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(ExportError, match=r"--mode: 'best' is not a mode; choose min or max"):
        export_experiment(str(root / "raw"), metric="score", mode="best")
    with pytest.raises(ExportError, match=r"no such folder; give the experiment folder"):
        export_experiment(str(tmp_path / "missing"), metric="score", mode="max")
    with pytest.raises(ExportError, match=r"no Ray experiment state here .*<storage_path>/<name>"):
        export_experiment(str(tmp_path), metric="score", mode="max")
    with pytest.raises(ExportError, match=r"no spec.yaml names the target metric and mode"):
        export_experiment(str(root / "raw"))
    (tmp_path / "spec.yaml").write_text("metric: [unclosed\n")
    with pytest.raises(ExportError, match=r"not valid YAML .* Pass --metric and --mode"):
        export_experiment(str(tmp_path))
    assert main(["export", str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.fullmatch(r"tunefleet: error: .*missing: no such folder; [^\n]*\n", captured.err)
    (tmp_path / "spec.yaml").unlink()  # a folder with no Ray state: the error alone
    assert main(["export", str(tmp_path), "--metric", "score", "--mode", "max"]) == 2
    captured = capsys.readouterr()
    assert re.fullmatch(
        r"tunefleet: error: .*: no Ray experiment state here [^\n]*\n", captured.err
    )


def test_resume_and_export_help_say_the_folder_is_trusted(capsys) -> None:
    for command in ("resume", "export"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert (
            f"Ray's saved experiment state is unpickled, which can run code: {command} only "
            "folders you trust." in text
        )


@pytest.mark.slow
def test_export_rebuilds_a_tunefleet_run_from_rays_state(root: Path, tmp_path: Path, capsys):
    copy = tmp_path / "results" / "tf"
    shutil.copytree(root / "tf", copy)
    for name in ("trials.parquet", "iterations.parquet"):
        (copy / name).unlink()
    assert main(["export", str(copy)]) == 0  # metric and mode from the folder's spec.yaml
    out, err = capsys.readouterr()
    assert err == ""  # tunefleet wrote this folder: no warning
    assert "exported 3 trials, 3 iteration rows" in out
    assert "3 of 3 trials had no Ray result.json" in out
    before = pd.read_parquet(root / "tf" / "trials.parquet")
    after = pd.read_parquet(copy / "trials.parquet")
    pd.testing.assert_frame_equal(after, before)  # trials.parquet is complete
    last = pd.read_parquet(root / "tf" / "iterations.parquet").groupby("trial_id").tail(1)
    rebuilt = pd.read_parquet(copy / "iterations.parquet")
    columns = ["trial_id", "training_iteration", "score", "loss", "group/step2", "node_id"]
    pd.testing.assert_frame_equal(
        rebuilt[columns].sort_values("trial_id").reset_index(drop=True),
        last[columns].sort_values("trial_id").reset_index(drop=True),
    )
    assert read_metadata(copy / "trials.parquet")["spec"]["name"] == "tf"


def _frames(root: Path, name: str) -> list[str]:
    files = sorted(glob.glob(f"{root}/*/{name}"))
    assert [Path(f).parent.name for f in files] == ["raw", "tf"]
    return files


@pytest.mark.slow
def test_experiments_under_one_root_read_as_one_dataset(raw: Path, root: Path) -> None:
    files = _frames(root, "trials.parquet")
    expected = {"raw": 3, "tf": 3}
    # The one-liners of experiments/SCHEMA.md, "Many experiments as one dataset".
    frame = pd.concat(map(pd.read_parquet, files), ignore_index=True)
    assert frame["experiment"].value_counts().to_dict() == expected
    assert {"count", "loss", "config/opt/lr"} <= set(frame.columns)  # the union of columns
    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
    assert table.num_rows == 6 and set(table.column_names) == set(frame.columns)
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    dataset = ds.dataset(files, schema=schema).to_table()
    assert dataset.num_rows == 6 and set(dataset.column_names) == set(frame.columns)
    iterations = pd.concat(map(pd.read_parquet, _frames(root, "iterations.parquet")))
    assert iterations["experiment"].value_counts().to_dict() == {"raw": 7, "tf": 9}


@pytest.mark.slow
def test_duckdb_and_polars_read_the_root(raw: Path, root: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    counts = duckdb.sql(
        f"select experiment, count(*), count(loss), count(count) from read_parquet("
        f"'{root}/*/trials.parquet', union_by_name=true) group by 1 order by 1"
    ).fetchall()
    assert counts == [("raw", 3, 0, 3), ("tf", 3, 3, 0)]
    rows = duckdb.sql(
        f"select experiment, count(*) from read_parquet('{root}/**/iterations.parquet', "
        "union_by_name=true) group by 1 order by 1"
    ).fetchall()
    assert rows == [("raw", 7), ("tf", 9)]
    files = _frames(root, "trials.parquet")
    frame = pl.concat(map(pl.scan_parquet, files), how="diagonal_relaxed").collect()
    assert frame.group_by("experiment").len().sort("experiment").rows() == [("raw", 3), ("tf", 3)]


def _documented(section: str) -> set[str]:
    """The column (or key) names of one table of SCHEMA.md."""
    text = SCHEMA.read_text()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end > 0 else None]
    return set(re.findall(r"^\| `([^`]+)` \|", body, flags=re.M))


def _placeholders(columns: list[str], metrics: set[str], metric: str) -> set[str]:
    out = set()
    for c in columns:
        if c.startswith("config/"):
            out.add("config/<param>")
        elif c == f"best/{metric}":
            out.add("best/<metric>")
        elif c in metrics:
            out.add("<metric>")
        else:
            out.add(c)
    return out


@pytest.mark.slow
def test_schema_doc_names_exactly_the_columns_a_run_writes(root: Path) -> None:
    metrics = {"score", "loss", "group/step2"}  # what tests.support.trainables:linear reports
    tf = root / "tf"
    trials = pq.read_schema(tf / "trials.parquet").names
    documented = _documented("trials.parquet") - {"pareto"}  # multi-objective runs only
    assert _placeholders(trials, metrics, "score") == documented
    assert trials[-1] == "experiment"
    iterations = pq.read_schema(tf / "iterations.parquet").names
    documented = _documented("iterations.parquet") - {"config/<param>"}  # PBT only
    assert _placeholders(iterations, metrics, "score") == documented
    assert iterations[-1] == "experiment"
    # Only in baseline runs, and in runs given a trainable object that no import path reaches.
    documented = _documented("File metadata") - {"baseline", "trainable_given_as_object"}
    assert set(read_metadata(tf / "trials.parquet")) == documented


def _meta(path: Path) -> dict[str, Any]:
    return read_metadata(path / "trials.parquet")


@pytest.mark.slow
def test_show_reports_the_wall_time_of_every_run(root: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "tf"
    shutil.copytree(root / "tf", copy)
    first = _meta(copy)
    assert main(["resume", str(copy), "--extend", "1"]) == 0
    second = _meta(copy)
    assert second["started_at"] == first["started_at"]  # the first run's start
    run_time = second["written_at"] - second["started_at"]
    assert first["wall_s"] < second["wall_s"] < run_time  # not the idle time between runs
    capsys.readouterr()
    assert main(["show", str(copy)]) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert f"wall time {second['wall_s']:.1f} s" in summary
    assert summary.startswith("tf: 4 trials")
