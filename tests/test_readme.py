"""The README's promises: its two commands, its CI hook and its pandas example."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_readme_documents_every_trials_column_the_writer_produces() -> None:
    from tunefleet.experiments.results import ResultsRecorder

    recorder = ResultsRecorder("unused", metric="acc", mode="max", info={})
    for column in recorder.trials_table().column_names:
        documented = column.replace("best/acc", "best/<metric>")
        assert f"`{documented}`" in README, column
    for column in recorder.iterations_table().column_names:
        assert f"`{column}`" in README, column
