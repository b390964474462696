"""The README's promises: its two commands, its CI hook and its pandas example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)


def test_readme_starts_with_the_two_quickstart_commands() -> None:
    run, test = _bash_blocks()[:2]
    assert "\n" not in run and "\n" not in test, "each is one command"
    assert run.startswith("python3 -m venv .venv && ")
    assert "torch==2.13.0" in run and run.endswith("tunefleet run experiments/quickstart.yaml")
    assert test.startswith("python3 -m venv .venv && ")
    assert "torch==2.13.0" in test and test.endswith("python -m pytest")
    assert (REPO / "experiments" / "quickstart.yaml").exists()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test = _bash_blocks()[1]
    ci = (REPO / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_the_schema_documents_every_column_the_writer_produces() -> None:
    from tunefleet.experiments.results.recorder import ResultsRecorder

    schema = (REPO / "experiments" / "SCHEMA.md").read_text()
    assert "experiments/SCHEMA.md" in README  # the README links it, and repeats none of it
    recorder = ResultsRecorder("unused", metric="acc", mode="max", info={})
    for column in recorder.trials_table().column_names:
        documented = column.replace("best/acc", "best/<metric>")
        assert f"`{documented}`" in schema, column
    for column in recorder.iterations_table().column_names:
        assert f"`{column}`" in schema, column


def test_the_readme_stays_short_and_its_links_resolve() -> None:
    assert len(README.splitlines()) <= 300
    for target in re.findall(r"\]\(([^)#:]+)\)", README):
        assert (REPO / target).exists(), target
    for page in (REPO / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), (page.name, target)


def _python_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)\n```", README, flags=re.S)
    return next(b for b in blocks if marker in b)


@pytest.mark.slow
def test_readme_trainable_examples_run_from_a_users_module(tmp_path: Path) -> None:
    """The README's class and scikit-learn examples, pasted into a user's module next to a
    spec, run by the real console script (its own embedded Ray, the user's folder as cwd)."""
    import subprocess
    import sys

    import pandas as pd

    module = "from pathlib import Path\n\n" + _python_block("class Model:") + "\n\n"
    module += _python_block("SklearnTrainable(")
    (tmp_path / "readme_models.py").write_text(module)
    specs = {
        "cls": "trainable: readme_models:Model\nmetric: score\nmode: max\n"
        "space: {lr: {uniform: [0.1, 0.5]}}\nstop: {training_iteration: 3}\n",
        "svc": "trainable: readme_models:svc\nmetric: cv_score_mean\nmode: max\n"
        "space: {C: {loguniform: [1.0, 10.0]}, gamma: {loguniform: [1.0e-4, 1.0e-2]}}\n",
    }
    for name, body in specs.items():
        # Seeded: an unseeded draw of C and gamma could give a config under the bound below.
        search = "search: {num_samples: 2, seed: 0}\n"
        (tmp_path / f"{name}.yaml").write_text(f"name: {name}\n{body}{search}")
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("tunefleet")), "run", f"{name}.yaml"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
    results = tmp_path / "results"
    cls = pd.read_parquet(results / "cls" / "iterations.parquet")
    lr = pd.read_parquet(results / "cls" / "trials.parquet").set_index("trial_id")["config/lr"]
    expected = -abs(1 - cls["training_iteration"] * cls["trial_id"].map(lr))
    assert len(cls) == 6 and cls["score"].tolist() == pytest.approx(expected.tolist())
    svc = pd.read_parquet(results / "svc" / "trials.parquet")
    assert len(svc) == 2 and (svc["status"] == "TERMINATED").all()
    # Both configs learn (chance is 0.1); the better one well (a large gamma on raw pixels
    # does not: 0.73 for seed 0's second draw).
    assert (svc["cv_score_mean"] > 0.5).all() and svc["cv_score_mean"].max() > 0.9


def test_the_search_quality_table_has_a_column_per_benchmarked_searcher() -> None:
    from benchmarks.search_quality import SEARCHERS

    benchmarks = (REPO / "benchmarks" / "README.md").read_text()
    header = next(line for line in benchmarks.splitlines() if line.startswith("| function |"))
    cells = [cell.strip() for cell in header.strip("|").split("|")]
    assert cells[1] == "trials at once" and cells[2:] == list(SEARCHERS)
