"""Experiment results as Parquet: `trials.parquet` and `iterations.parquet`.

A Ray Tune callback on the driver records every result as it arrives and writes both files
during the run (every `flush_every_s` seconds) and when it ends. Files are replaced
atomically (written to a temporary name, then renamed), so a reader, or a crash, never sees
a half-written file. The column contract is in README.md, "Results".
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from ray.tune import Callback

from tunefleet.experiments.pbt_log import read_exploits
from tunefleet.experiments.tables import (
    METADATA_KEY,
    build_table,
    flatten,
    read_metadata,
    user_metrics,
    versions,
    write_parquet_atomic,
)

__all__ = [
    "EXPLOITS_FILE",
    "ITERATIONS_FILE",
    "METADATA_KEY",
    "TRIALS_FILE",
    "ResultsRecorder",
    "error_summary",
    "flatten",
    "read_metadata",
    "write_parquet_atomic",
]

TRIALS_FILE = "trials.parquet"
ITERATIONS_FILE = "iterations.parquet"
EXPLOITS_FILE = "exploits.parquet"

_TIMING = ("time_this_iter_s", "time_total_s", "timestamp")


@dataclass
class _TrialRecord:
    """What the recorder keeps per trial between writes."""

    last: dict[str, Any] = field(default_factory=dict)
    best: float | None = None
    iterations: int = 0
    time_total_s: float | None = None
    node_ip: str | None = None
    node_id: str | None = None


@dataclass(frozen=True)
class _Target:
    metric: str
    mode: str

    def better(self, value: Any, than: float | None) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if than is None:
            return True
        return value > than if self.mode == "max" else value < than


class ResultsRecorder(Callback):
    """Records every trial result on the driver and keeps the Parquet files current.

    Args:
        experiment_dir: Local directory (or pyarrow filesystem URI) of the experiment.
        metric: The target metric; its best value per trial gets a `best/<metric>` column.
        mode: `min` or `max`.
        info: Experiment-level metadata (the spec, ...) stored in every file's metadata.
        flush_every_s: Seconds between writes while the experiment runs.
        population_based: PBT/PB2 run: configs change within a trial, so every iteration
            row carries the config it ran with, and the exploits go to `exploits.parquet`.
    """

    def __init__(
        self,
        experiment_dir: str,
        *,
        metric: str,
        mode: str,
        info: Mapping[str, Any],
        flush_every_s: float = 10.0,
        population_based: bool = False,
    ) -> None:
        self.experiment_dir = experiment_dir
        self.target = _Target(metric, mode)
        self.info = {**info, "metric": metric, "mode": mode, "versions": versions()}
        self.flush_every_s = flush_every_s
        self.population_based = population_based
        self._tags: dict[str, str] = {}  # original experiment tag -> trial id (PBT's log)
        self._records: dict[str, _TrialRecord] = {}
        self._iterations: list[dict[str, Any]] = []
        self._trials: list[Any] = []
        self._errors: dict[str, str] = {}
        self._dirty = False
        self._last_flush = time.monotonic()
        self.started_at = time.time()

    # Ray Tune callback hooks ---------------------------------------------------------

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        metrics = user_metrics(result)
        node_id = metrics.pop("node_id", None)  # added by tunefleet.trainables.report
        row = {
            "trial_id": trial.trial_id,
            "training_iteration": result.get("training_iteration"),
            **metrics,
            "node_id": node_id,
        }
        row.update({k: result.get(k) for k in _TIMING})
        if self.population_based:
            row.update({f"config/{k}": v for k, v in flatten(result.get("config", {})).items()})
        self._iterations.append(row)
        record = self._records.setdefault(trial.trial_id, _TrialRecord())
        record.last.update(metrics)
        record.iterations = int(result.get("training_iteration") or record.iterations)
        record.time_total_s = result.get("time_total_s", record.time_total_s)
        record.node_ip = result.get("node_ip", record.node_ip)
        record.node_id = node_id or record.node_id
        value: Any = metrics.get(self.target.metric)
        if self.target.better(value, record.best):
            record.best = float(value)
        self._trials = trials
        self._dirty = True

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._tags.setdefault(trial.experiment_tag, trial.trial_id)
        self._trials = trials

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._trials = trials
        self._dirty = True

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._errors[trial.trial_id] = error_summary(trial)
        self._trials = trials
        self._dirty = True

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._trials = trials
        if self._dirty and time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._trials = trials
        self.flush()

    # Reading back --------------------------------------------------------------------

    @property
    def trials(self) -> list[Any]:
        """Ray's trial objects as last seen."""
        return list(self._trials)

    def best_trial(self) -> tuple[str, float, dict[str, Any]] | None:
        """(trial id, best value of the target metric, config) of the best trial that has
        not failed."""
        best: tuple[str, float, dict[str, Any]] | None = None
        for trial in self._trials:
            record = self._records.get(trial.trial_id)
            if str(trial.status) == "ERROR" or record is None:
                continue  # a failed trial's model is not one to pick
            if self.target.better(record.best, best[1] if best else None):
                best = (trial.trial_id, float(record.best), dict(trial.config))  # type: ignore[arg-type]
        return best

    # Writing -------------------------------------------------------------------------

    def flush(self) -> None:
        """Writes both Parquet files now."""
        meta = {**self.info, "started_at": self.started_at, "written_at": time.time()}
        write_parquet_atomic(self.trials_table(), _join(self.experiment_dir, TRIALS_FILE), meta)
        write_parquet_atomic(
            self.iterations_table(), _join(self.experiment_dir, ITERATIONS_FILE), meta
        )
        if self.population_based:
            exploits = self.exploits_table()
            if exploits.num_rows:
                write_parquet_atomic(exploits, _join(self.experiment_dir, EXPLOITS_FILE), meta)
        self._dirty = False
        self._last_flush = time.monotonic()

    def trials_table(self) -> pa.Table:
        """One row per trial, in the order Ray created them."""
        best_col = f"best/{self.target.metric}"
        rows = []
        for trial in self._trials:
            record = self._records.get(trial.trial_id, _TrialRecord())
            row: dict[str, Any] = {"trial_id": trial.trial_id, "status": str(trial.status)}
            row.update({f"config/{k}": v for k, v in flatten(trial.config).items()})
            row.update(record.last)
            row[best_col] = record.best
            row["iterations"] = record.iterations
            row["time_total_s"] = record.time_total_s
            row["node_ip"] = record.node_ip
            row["node_id"] = record.node_id
            row["error"] = self._errors.get(trial.trial_id)
            rows.append(row)
        fixed = [
            "trial_id",
            "status",
            best_col,
            "iterations",
            "time_total_s",
            "node_ip",
            "node_id",
            "error",
        ]
        return build_table(rows, fixed)

    def iterations_table(self) -> pa.Table:
        """One row per reported result."""
        fixed = ["trial_id", "training_iteration", *_TIMING, "node_id"]
        return build_table(self._iterations, fixed)

    def exploits_table(self) -> pa.Table:
        """PBT: one row per exploit (which trial copied which, into what config)."""
        rows = (
            read_exploits(self._trials[0].local_experiment_path, self._tags) if self._trials else []
        )
        fixed = ["trial_id", "training_iteration", "cloned_from", "cloned_iteration"]
        return build_table(rows, fixed)


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


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"
