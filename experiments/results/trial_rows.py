"""What the results recorder keeps per trial, and what it reads back from an earlier run.

`TrialRecord` is one trial's summary between writes (last values, best value of the target
metric, iterations, node); `Target` compares values of that metric. `read_earlier` reads the
files an earlier run of the same experiment left (`resume`, `resume --extend`) into those
summaries, so the run that continues writes every trial, old and new. `error_summary` is
the one line of a failed trial's error that its row and the progress lines show.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from tunefleet.experiments.results.files import ITERATIONS_FILE, TRIALS_FILE
from tunefleet.experiments.results.parquet_io import (
    join_path,
    path_exists,
    read_metadata,
    read_rows,
    read_table,
)

__all__ = ["EarlierRun", "Target", "TrialRecord", "error_summary", "read_earlier"]


@dataclass
class TrialRecord:
    """What the recorder keeps per trial between writes."""

    last: dict[str, Any] = field(default_factory=dict)
    best: float | None = None
    iterations: int = 0
    time_total_s: float | None = None
    node_ip: str | None = None
    node_id: str | None = None


@dataclass(frozen=True)
class Target:
    """The target metric and its mode."""

    metric: str
    mode: str

    def better(self, value: Any, than: float | None) -> bool:
        """Whether `value` is a finite number better than `than` (None: any is)."""
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            return False
        if than is None:
            return True
        return value > than if self.mode == "max" else value < than


@dataclass
class EarlierRun:
    """An earlier run's files, as the recorder continues them.

    Attributes:
        rows: `trials.parquet` rows by trial id (without the `experiment` column).
        records: Each trial's summary, rebuilt from its row.
        errors: Failed trials' error lines.
        invalid: Why a finished trial's target metric was unusable.
        started_at: The first run's start (Unix time), when the metadata has it.
        wall_s: The earlier runs' wall time.
        iterations: `iterations.parquet` without the `experiment` column and metadata, if
            there is one.
    """

    rows: dict[str, dict[str, Any]]
    records: dict[str, TrialRecord]
    errors: dict[str, str]
    invalid: dict[str, str]
    started_at: float | None
    wall_s: float
    iterations: pa.Table | None


def read_earlier(experiment_dir: str, metric: str) -> EarlierRun | None:
    """The files an earlier run of the experiment in `experiment_dir` left, or None."""
    trials_path = join_path(experiment_dir, TRIALS_FILE)
    iterations_path = join_path(experiment_dir, ITERATIONS_FILE)
    if not path_exists(trials_path):
        return None
    best_col = f"best/{metric}"
    fixed = {"trial_id", "status", best_col, "iterations", "time_total_s", "node_ip"}
    fixed |= {"node_id", "error", "invalid_metric", "experiment", "pareto"}
    meta = read_metadata(trials_path)
    started_at, wall_s = None, 0.0
    if meta.get("started_at") is not None:
        started_at = float(meta["started_at"])
        wall = meta.get("wall_s")
        if wall is None and meta.get("written_at") is not None:
            wall = float(meta["written_at"]) - started_at
        wall_s = float(wall or 0.0)
    earlier = EarlierRun({}, {}, {}, {}, started_at, wall_s, None)
    for row in read_rows(trials_path):
        tid = row["trial_id"]
        row.pop("experiment", None)
        earlier.rows[tid] = row
        last = {
            k: v
            for k, v in row.items()
            if k not in fixed and not k.startswith("config/") and v is not None
        }
        earlier.records[tid] = TrialRecord(
            last=last,
            best=row.get(best_col),
            iterations=int(row.get("iterations") or 0),
            time_total_s=row.get("time_total_s"),
            node_ip=row.get("node_ip"),
            node_id=row.get("node_id"),
        )
        if row.get("error"):
            earlier.errors[tid] = row["error"]
        if row.get("invalid_metric"):
            earlier.invalid[tid] = row["invalid_metric"]
    if path_exists(iterations_path):
        table = read_table(iterations_path)
        if "experiment" in table.column_names:
            table = table.drop_columns(["experiment"])
        earlier.iterations = table.replace_schema_metadata(None)
    return earlier


def error_summary(trial: Any) -> str:
    """The last line of a failed trial's error (`ValueError: boom`).

    Ray writes the error to the trial's local staging folder first and syncs it to storage
    later, so the local file is read when it is there.
    """
    text = ""
    try:
        path = trial.error_file
        if path and os.path.exists(path):
            text = Path(path).read_text(errors="replace")
        else:
            error = trial.get_error()
            text = str(error) if error is not None else ""
    except Exception:  # an unreadable error file must not stop the run
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error (see the trial's error.txt)"
