"""The files of an experiment folder, by name, and the baseline's row.

<storage>/<name>/spec.yaml             the spec as run (overrides applied)
<storage>/<name>/trials.parquet        one row per trial
<storage>/<name>/iterations.parquet    one row per reported result
<storage>/<name>/exploits.parquet      population-based training's exploits
<storage>/<name>/final.parquet         the final evaluation on held-out data
<storage>/<name>/baseline/             the baseline trial, an experiment of its own
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from tunefleet.common.locations import locate, translated

__all__ = [
    "BASELINE_DIR",
    "EXPLOITS_FILE",
    "FINAL_FILE",
    "ITERATIONS_FILE",
    "SPEC_FILE",
    "TRIALS_FILE",
    "read_baseline",
]

SPEC_FILE = "spec.yaml"
TRIALS_FILE = "trials.parquet"
ITERATIONS_FILE = "iterations.parquet"
EXPLOITS_FILE = "exploits.parquet"
FINAL_FILE = "final.parquet"
BASELINE_DIR = "baseline"


def read_baseline(exp_dir: str | Path) -> pd.Series | None:
    """The baseline trial's row of `<exp_dir>/baseline/trials.parquet` (a local folder or a
    URI), or None."""
    path = locate(exp_dir) / BASELINE_DIR / TRIALS_FILE
    if not path.is_file():
        return None
    import pandas as pd  # heavy: the file names above are read by the CLI before Ray starts

    with translated(path.uri):
        trials = pd.read_parquet(path.path, filesystem=path.filesystem)
    return None if trials.empty else trials.iloc[0]
