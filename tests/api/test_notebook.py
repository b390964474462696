"""examples/quickstart.ipynb, executed end to end in a real Jupyter kernel (nbclient and
ipykernel): a model and a training function defined in cells, tuned with Optuna + ASHA, the
progress shown as one output updated in place, the leaderboard plotted."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"

# Run in the same kernel after the notebook's runs and before its shutdown: whether the
# second run found the Ray the first one started.
SAME_RAY = (
    "import sys, ray\n"
    "print('ray kept:', ray.is_initialized(), sys.modules['tunefleet.cluster.connect']._kept)"
)


def _text(output: Any) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    return str(output.get("data", {}).get("text/plain", ""))


@pytest.mark.slow
def test_the_quickstart_notebook_runs_in_a_jupyter_kernel(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "the notebook is kept without outputs"
    )
    shutdown = len(nb.cells) - 1
    assert "tunefleet.shutdown()" in nb.cells[shutdown].source
    nb.cells.insert(shutdown, nbformat.v4.new_code_cell(SAME_RAY))
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    tuned, function_run, plot, kept = code[2], code[3], code[4], code[5]
    for cell in (tuned, function_run):
        # The progress: one output (a display id) updated in place to the final count.
        shown = [o for o in cell.outputs if o.output_type == "display_data"]
        assert len(shown) == 1, cell.outputs
        assert "6/6 done · 0 running · 0 pending · 0 errored" in _text(shown[0])
    everything = "".join(_text(o) for c in code for o in c.outputs)
    assert "\r" not in everything and "\x1b[" not in everything  # no terminal redraws
    assert "pid=" not in everything  # Ray's worker logs stay out of the cells
    assert "Traceback" not in everything and "Error" not in everything
    leaderboard = next(o for o in tuned.outputs if o.output_type == "execute_result")
    assert "best/val_accuracy" in leaderboard["data"]["text/html"]
    assert "6 trials, best val_accuracy 0.9" in _text(function_run.outputs[-1])
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)
    assert "ray kept: True local" in "".join(_text(o) for o in kept.outputs)
    for name in ("notebook-mlp", "notebook-function"):
        assert (tmp_path / "results" / name / "trials.parquet").is_file()
