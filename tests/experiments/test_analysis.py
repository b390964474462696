"""Reading results back: `load`, the leaderboard, importance and the HTML report.

One real experiment (30 trials of `influence` under ASHA, on Ray) serves every test that
needs a run; its metric follows from `x` alone, so the expected answers are computed from
the trainable's formula.
"""

from __future__ import annotations

import base64
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.analysis_trainables import influence_score
from tests.support.specs import spec_yaml
from tunefleet.experiments import read_metadata
from tunefleet.experiments.analysis.experiment import AnalysisError, Experiment, load, load_all
from tunefleet.experiments.analysis.report import write_report
from tunefleet.experiments.analysis.show import leaderboard_text
from tunefleet.experiments.cli import main

SPEC = spec_yaml(
    name="influence",
    trainable="tests.support.analysis_trainables:influence",
    space={
        "x": {"uniform": [0.0, 1.0]},
        "noise_param": {"uniform": [0.0, 1.0]},
        "lr": {"loguniform": [1.0e-4, 1.0e-1]},
        "opt": {"choice": ["adam", "sgd"]},
        "steps": 4,
        "fail_above": 0.9,
    },
    search={"algorithm": "random", "num_samples": 30, "seed": 0},
    scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2},
    stop={"training_iteration": 4},
)
SEARCHED = ("x", "noise_param", "lr", "opt")
PLOTS = ("best_so_far", "learning_curves", "parallel_coordinates", "importance")


@pytest.fixture(scope="module")
def run_dir(ray_instance, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The experiment folder of one real run."""
    root = tmp_path_factory.mktemp("analysis")
    spec = root / "spec.yaml"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--storage", str(root / "results")]) == 0
    return root / "results" / "influence"


@pytest.fixture(scope="module")
def exp(run_dir: Path) -> Experiment:
    return load(run_dir)


def expected_best(trials: pd.DataFrame) -> pd.Series:
    """Each trial's best score by the formula (the last iteration's: it only grows)."""
    return pd.Series(
        [
            influence_score({"x": row["config/x"]}, int(row["iterations"]))
            for _, row in trials.iterrows()
        ],
        index=trials["trial_id"],
    )


@pytest.mark.slow
def test_load_reads_the_files_as_pandas_does(exp: Experiment, run_dir: Path) -> None:
    pd.testing.assert_frame_equal(exp.trials, pd.read_parquet(run_dir / "trials.parquet"))
    pd.testing.assert_frame_equal(exp.iterations, pd.read_parquet(run_dir / "iterations.parquet"))
    assert exp.exploits is None
    assert exp.metadata == read_metadata(run_dir / "trials.parquet")
    assert (exp.name, exp.metric, exp.mode) == ("influence", "score", "max")
    assert exp.searched == SEARCHED
    assert exp.wall_s is not None and exp.wall_s > 0
    assert load(run_dir / "trials.parquet").trials.shape == exp.trials.shape


@pytest.mark.slow
def test_best_and_top_follow_from_the_formula(exp: Experiment) -> None:
    trials = exp.trials
    failed = trials["status"] == "ERROR"
    assert (failed == (trials["config/x"] > 0.9)).all() and failed.any()
    ok = trials[~failed]
    expected = expected_best(ok)
    assert ok.set_index("trial_id")["best/score"].to_numpy() == pytest.approx(expected.to_numpy())

    ranking = expected.sort_values(ascending=False)
    assert exp.best()["trial_id"] == ranking.index[0]
    assert exp.best()["best/score"] == pytest.approx(ranking.iloc[0])
    top = exp.top(5)
    assert list(top["trial_id"]) == list(ranking.index[:5])
    assert list(top.index) == [1, 2, 3, 4, 5]
    assert list(top.columns) == [
        "trial_id",
        "status",
        "iterations",
        "best/score",
        "score",
        *(f"config/{n}" for n in SEARCHED),
    ]
    assert len(exp.top(100)) == len(ok)  # failed trials are not ranked


@pytest.mark.slow
def test_learning_curves_are_one_column_per_trial(exp: Experiment) -> None:
    curves = exp.learning_curves()
    assert curves.shape == (4, 30)
    assert list(curves.columns) == list(exp.trials["trial_id"])
    for _, trial in exp.trials.iterrows():
        curve = curves[trial["trial_id"]]
        n = int(trial["iterations"])
        assert curve.notna().sum() == n
        expected = [influence_score({"x": trial["config/x"]}, s) for s in range(1, n + 1)]
        assert curve.iloc[:n].to_numpy() == pytest.approx(expected)
    assert exp.learning_curves("loss").iloc[1].dropna().eq(0.5).all()
    with pytest.raises(
        AnalysisError,
        match=r"metric 'nope' is not in iterations.parquet; reported metrics: score, loss\.",
    ):
        exp.learning_curves("nope")


@pytest.mark.slow
def test_best_so_far_only_improves_and_ends_at_the_best(exp: Experiment) -> None:
    table = exp.best_so_far()
    assert len(table) == 30 and set(table["trial_id"]) == set(exp.trials["trial_id"])
    assert table["best_so_far"].dropna().is_monotonic_increasing
    assert table["wall_s"].is_monotonic_increasing and (table["wall_s"] >= 0).all()
    assert table["best_so_far"].iloc[-1] == pytest.approx(exp.best()["best/score"])
    assert table.loc[table["status"] == "ERROR", "value"].isna().all()


@pytest.mark.slow
def test_importance_ranks_the_influential_parameter_first(exp: Experiment) -> None:
    importance = exp.importance()
    assert set(importance.index) == set(SEARCHED)
    assert importance.index[0] == "x"
    assert importance["x"] > 0.5 > importance["noise_param"]
    assert importance.sum() == pytest.approx(1.0)


@pytest.mark.slow
def test_leaderboard_text_lists_the_best_trial_first(exp: Experiment) -> None:
    text = leaderboard_text(exp, k=5)
    lines = text.splitlines()
    best = exp.best()
    failed = int((exp.trials["status"] == "ERROR").sum())
    assert lines[0].startswith(f"influence: 30 trials ({failed} error, {30 - failed} terminated)")
    assert f"best score = {best['best/score']:.4g} (trial {best['trial_id']})" in lines[0]
    assert re.search(r"wall time \d+\.\d s$", lines[0])
    assert lines[1].split() == [
        "rank",
        "trial_id",
        "status",
        "iter",
        "best/score",
        "score",
        *SEARCHED,
    ]
    first = lines[2].split()
    assert first[:3] == ["1", best["trial_id"], "TERMINATED"]
    assert f"{best['config/x']:.4g}" in first
    assert lines[7] == f"({failed} failed trial{'s' if failed > 1 else ''} not ranked)"


@pytest.mark.slow
def test_report_embeds_every_plot(exp: Experiment, run_dir: Path, tmp_path: Path) -> None:
    report = write_report(run_dir, tmp_path / "report")
    assert report == tmp_path / "report" / "report.html"
    html = report.read_text()
    for name in (*PLOTS, "importance_scatter"):
        png = tmp_path / "report" / f"{name}.png"
        assert png.stat().st_size > 1024, name
        assert_drawn(png)
        embedded = re.search(rf'<figure id="{name}"><img src="data:image/png;base64,([^"]+)"', html)
        assert embedded is not None, name
        assert base64.b64decode(embedded.group(1)) == png.read_bytes()
    assert not (tmp_path / "report" / "pbt_lineage.png").exists()
    assert exp.best()["trial_id"] in html and "<h2>Leaderboard</h2>" in html
    assert "influence: 30 trials" in html


@pytest.mark.slow
def test_report_draws_the_pbt_lineage(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pbt"
    shutil.copytree(run_dir, folder)
    ids = pd.read_parquet(folder / "trials.parquet")["trial_id"].tolist()
    pd.DataFrame(
        {
            "trial_id": [ids[0], ids[1], ids[0]],
            "training_iteration": [2, 2, 4],
            "cloned_from": [ids[2], ids[2], ids[1]],
            "cloned_iteration": [2, 2, 3],
            "config/x": [0.5, 0.6, 0.7],
        }
    ).to_parquet(folder / "exploits.parquet")
    assert load(folder).exploits is not None
    report = write_report(folder)
    assert report == folder / "report" / "report.html"
    png = folder / "report" / "pbt_lineage.png"
    assert png.stat().st_size > 1024
    assert_drawn(png)
    assert '<figure id="pbt_lineage"><img src="data:image/png;base64,' in report.read_text()


@pytest.mark.slow
def test_load_all_concatenates_every_experiment(run_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(run_dir, tmp_path / "again")
    shutil.copytree(run_dir, tmp_path / "influence")
    (tmp_path / "not-an-experiment").mkdir()
    trials = load_all(tmp_path)
    assert trials.columns[0] == "experiment"
    assert trials["experiment"].value_counts().to_dict() == {"again": 30, "influence": 30}
    with pytest.raises(AnalysisError, match=r"holds the experiments again, influence: pass one"):
        load(tmp_path)


def test_loading_a_folder_without_results_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(
        AnalysisError, match=r"has no trials.parquet; run `tunefleet run SPEC.yaml` first"
    ):
        load(tmp_path)
    with pytest.raises(AnalysisError, match=r"holds no experiment folders"):
        load_all(tmp_path)
    with pytest.raises(AnalysisError, match=r"is not a folder"):
        load(tmp_path / "missing")
    pd.DataFrame({"trial_id": ["a"], "status": ["TERMINATED"]}).to_parquet(
        tmp_path / "trials.parquet"
    )
    with pytest.raises(AnalysisError, match=r"has trials.parquet but no iterations.parquet"):
        load(tmp_path)
    assert issubclass(AnalysisError, ValueError)


def assert_drawn(png: Path) -> None:
    """matplotlib drew something: the pixels vary, and some of them are far from white."""
    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    assert pixels.std() > 0.05, png
    assert (pixels.mean(axis=-1) < 0.6).mean() > 0.002, png


# Without Ray: fabricated results --------------------------------------------------------


def fabricated(tmp_path: Path) -> Experiment:
    """Ten trials minimizing `loss = depth` over a grid, a choice of lists, and a constant."""
    rng = np.random.default_rng(0)
    depth = np.array([1, 2, 3, 1, 2, 3, 1, 2, 3, 2])
    trials = pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(10)],
            "status": ["TERMINATED"] * 9 + ["ERROR"],
            "best/loss": depth + 0.01 * rng.random(10),
            "iterations": [3] * 9 + [1],
            "config/model/depth": depth,
            "config/layers": [[1, 2], [3]] * 5,
            "config/wd": rng.random(10),
            "config/epochs": [3] * 10,
        }
    )
    trials.loc[9, "best/loss"] = 0.0  # a failed trial's value is never the best
    trials.to_parquet(tmp_path / "trials.parquet")
    iterations = pd.DataFrame(
        {
            "trial_id": [
                t
                for t, n in zip(trials["trial_id"], trials["iterations"], strict=True)
                for _ in range(n)
            ],
            "training_iteration": [s for n in trials["iterations"] for s in range(1, n + 1)],
            "timestamp": np.arange(28) + 100,
        }
    )
    iterations["loss"] = 1.0
    space = {
        "model": {"depth": {"grid": [1, 2, 3]}},
        "layers": {"choice": [[1, 2], [3]]},
        "wd": {"uniform": [0.0, 1.0]},
        "epochs": 3,
    }
    return Experiment(
        trials=pd.read_parquet(tmp_path / "trials.parquet"),
        iterations=iterations,
        exploits=None,
        metadata={"metric": "loss", "mode": "min", "spec": {"space": space}, "started_at": 99.5},
    )


def test_min_mode_and_odd_parameters_without_ray(tmp_path: Path) -> None:
    exp = fabricated(tmp_path)
    assert exp.searched == ("model/depth", "layers", "wd")
    assert exp.best()["trial_id"] in {"t0", "t3", "t6"}
    assert exp.best()["best/loss"] < 1.01
    assert exp.top(3)["config/model/depth"].tolist() == [1, 1, 1]
    table = exp.best_so_far()
    assert table["trial_id"].tolist() == [f"t{i}" for i in range(10)]
    assert table["best_so_far"].is_monotonic_decreasing
    assert table["wall_s"].iloc[0] == pytest.approx(2.5)

    importance = exp.importance()
    assert importance.index[0] == "model/depth"
    assert set(importance.index) == {"model/depth", "layers", "wd"}
    assert exp.importance(max_trials=6).index[0] == "model/depth"  # a sample of 6 of the 9
    with pytest.raises(AnalysisError, match=r"trials.parquet has no column 'nope'"):
        exp.importance("nope")


def test_importance_spans_normal_parameters_over_the_values_drawn() -> None:
    """Normal parameters have no bounds; fANOVA gets the range the trials drew."""
    rng = np.random.default_rng(1)
    lr = np.exp(rng.normal(-4.6, 1.0, 20))
    shift = rng.normal(0.0, 1.0, 20)
    trials = pd.DataFrame(
        {
            "trial_id": [f"t{i}" for i in range(20)],
            "status": ["TERMINATED"] * 20,
            "best/loss": np.abs(np.log(lr) + 4.6) + 0.01 * shift,
            "config/lr": lr,
            "config/shift": shift,
        }
    )
    space = {"lr": {"lognormal": [-4.6, 1.0]}, "shift": {"qnormal": [0.0, 1.0, 0.001]}}
    exp = Experiment(
        trials=trials,
        iterations=pd.DataFrame({"trial_id": [], "training_iteration": [], "loss": []}),
        exploits=None,
        metadata={"metric": "loss", "mode": "min", "spec": {"space": space}},
    )
    importance = exp.importance()
    assert list(importance.index) == ["lr", "shift"]
    assert importance["lr"] > 0.8


def test_report_without_matplotlib_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    exp = fabricated(tmp_path)
    exp.iterations.to_parquet(tmp_path / "iterations.parquet")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(
        ImportError,
        match=r"^tunefleet report needs matplotlib; install it with `pip install 'tunefleet\[report\]'`\.$",
    ):
        write_report(tmp_path)
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_show_and_report_commands(exp: Experiment, run_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["show", str(run_dir), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == leaderboard_text(exp, k=3)
    assert out.splitlines()[2].split()[1] == exp.best()["trial_id"]
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip() == f"report: {tmp_path / 'r' / 'report.html'}"
    for name in PLOTS:
        assert (tmp_path / "r" / f"{name}.png").stat().st_size > 1024, name


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "{tmp}/nothing"], "nothing is not a folder; pass an experiment folder."),
        (["show", "{tmp}"], "has no trials.parquet; run `tunefleet run SPEC.yaml` first"),
        (["show", "{run}", "--top", "0"], "--top: give a positive number of trials."),
        (["report", "{tmp}"], "has no trials.parquet"),
    ],
)
def test_show_and_report_errors_are_one_line(
    argv: list[str], message: str, run_dir: Path, tmp_path: Path, capsys
) -> None:
    argv = [a.format(tmp=tmp_path, run=run_dir) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunefleet: error: ") and message in err and err.count("\n") == 1


@pytest.mark.slow
def test_readme_analysis_example_runs(run_dir: Path, capsys) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", readme, flags=re.S)
    example = next(b for b in blocks if "experiments.analysis import load" in b)
    code = example.replace('"results/quickstart"', repr(str(run_dir)))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    exp = namespace["exp"]
    assert list(namespace["curves"].columns) == list(exp.trials["trial_id"])
    assert exp.best()["trial_id"] in capsys.readouterr().out
