"""experiments/digits_final.yaml end to end, smaller: baseline, TPE + ASHA search, final test
evaluation with 3 seeds, and a report with baseline, validation and test side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tunefleet.experiments.analysis.experiment import load
from tunefleet.experiments.analysis.outcome import outcome_table
from tunefleet.experiments.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.usefixtures("ray_instance")
def test_digits_final_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    spec = REPO / "experiments" / "digits_final.yaml"
    overrides = [
        "search.num_samples=3",
        "search.n_initial_points=2",
        "space.epochs=4",
        "stop.training_iteration=4",
        "scheduler.grace_period=2",
        "final.top_k=1",
    ]
    args = ["run", str(spec), "--storage", str(tmp_path)]
    for item in overrides:
        args += ["--set", item]
    assert main(args) == 0
    out = capsys.readouterr().out
    exp_dir = tmp_path / "digits_final"
    assert "baseline val_accuracy = " in out
    assert "final evaluation on the held-out test split (3 seeds per config" in out

    final = pd.read_parquet(exp_dir / "final.parquet")
    assert sorted(final["rank"].unique()) == [0, 1]  # the baseline and the best config
    assert final.groupby("rank").size().tolist() == [3, 3]
    assert final["baseline"].tolist() == [True] * 3 + [False] * 3
    base = pd.read_parquet(exp_dir / "baseline" / "trials.parquet")
    assert final[final["baseline"]]["trial_id"].unique().tolist() == base["trial_id"].tolist()
    assert base["config/seed"].iloc[0] == 0
    assert "config/lr" not in base.columns  # the wrapper's default learning rate

    table = outcome_table(load(exp_dir))
    assert table is not None
    assert list(table.columns) == ["validation", "test (mean)", "test (std)", "seeds"]
    assert table.index[0] == "baseline" and table.index[1].startswith("best (trial ")
    assert table.loc["baseline", "seeds"] == 3
    best_test = final[final["rank"] == 1]["test_accuracy"].mean()
    assert table.iloc[1]["test (mean)"] == pytest.approx(best_test)
    assert 0.5 < best_test <= 1

    assert main(["report", str(exp_dir), "--out", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Baseline, validation and test</h2>" in html
    section = html.split("<h2>Baseline, validation and test</h2>")[1].split("<h2>")[0]
    for text in ("baseline", "best (trial", "improvement", "validation", "test (mean)"):
        assert text in section
