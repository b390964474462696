"""Experiment results as Parquet: `trials.parquet` and `iterations.parquet`.

A Ray Tune callback on the driver records every result as it arrives and writes both files
during the run (each time Ray saves its experiment state, every `results.flush_every_s`
seconds, so the files and the state `resume` restores agree) and when it ends. Files are replaced
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
        population_based: bool = False,
    ) -> None:
        self.experiment_dir = experiment_dir
        self.target = _Target(metric, mode)
        self.info = {**info, "metric": metric, "mode": mode, "versions": versions()}
        self.population_based = population_based
        self._tags: dict[str, str] = {}  # original experiment tag -> trial id (PBT's log)
        self._records: dict[str, _TrialRecord] = {}
        self._iterations: list[dict[str, Any]] = []
        self._index: dict[tuple[str, Any], int] = {}  # (trial, iteration) -> row
        self._earlier: dict[str, dict[str, Any]] = {}  # trials.parquet rows of earlier runs
        self._pruned = False
        self._trials: list[Any] = []
        self._errors: dict[str, str] = {}
        self._dirty = False
        self._ray_saved = False
        self.started_at = time.time()

    # Ray Tune callback hooks ---------------------------------------------------------

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        """Picks up the files of an earlier run of this experiment (resume, extend)."""
        self._load_existing()

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self._earlier and not self._pruned:
            self._forget_lost(trials)

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
        key = (trial.trial_id, row["training_iteration"])
        if key in self._index:
            # Re-run after a restore from an earlier checkpoint: the new result replaces
            # the one the interrupted run reported, so each iteration appears once.
            self._iterations[self._index[key]] = row
        else:
            self._index[key] = len(self._iterations)
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

    def get_state(self) -> None:
        """Called by Ray each time it saves its experiment state (what `resume` restores);
        the files are rewritten right after, in the same step, so that they never show a
        trial finished that the saved state does not know."""
        self._ray_saved = True

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._trials = trials
        if self._dirty and self._ray_saved:
            self.flush()

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._trials = trials
        self.flush()

    # Reading back --------------------------------------------------------------------

    @property
    def trials(self) -> list[Any]:
        """Ray's trial objects as last seen."""
        return list(self._trials)

    def statuses(self) -> dict[str, int]:
        """Trials by status, this run's and earlier runs' (extend) together."""
        counts: dict[str, int] = {}
        current = {t.trial_id for t in self._trials}
        earlier = [row["status"] for tid, row in self._earlier.items() if tid not in current]
        for status in [*earlier, *(str(t.status) for t in self._trials)]:
            counts[status] = counts.get(status, 0) + 1
        return counts

    def best_trial(self) -> tuple[str, float, dict[str, Any]] | None:
        """(trial id, best value of the target metric, config) of the best trial that has
        not failed."""
        best: tuple[str, float, dict[str, Any]] | None = None
        candidates = [(t.trial_id, str(t.status), dict(t.config)) for t in self._trials]
        current = {tid for tid, _, _ in candidates}
        for tid, row in self._earlier.items():
            if tid not in current:
                config = {
                    k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")
                }
                candidates.insert(0, (tid, str(row["status"]), config))
        for tid, status, config in candidates:
            record = self._records.get(tid)
            if status == "ERROR" or record is None:
                continue  # a failed trial's model is not one to pick
            if self.target.better(record.best, best[1] if best else None):
                best = (tid, float(record.best), config)  # type: ignore[arg-type]
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
        self._ray_saved = False

    def trials_table(self) -> pa.Table:
        """One row per trial, in the order Ray created them (earlier runs' trials first)."""
        best_col = f"best/{self.target.metric}"
        current = {trial.trial_id for trial in self._trials}
        rows = [row for tid, row in self._earlier.items() if tid not in current]
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

    def _load_existing(self) -> None:
        trials_path = _join(self.experiment_dir, TRIALS_FILE)
        iterations_path = _join(self.experiment_dir, ITERATIONS_FILE)
        if not _exists(trials_path):
            return
        best_col = f"best/{self.target.metric}"
        fixed = {"trial_id", "status", best_col, "iterations", "time_total_s", "node_ip"}
        fixed |= {"node_id", "error"}
        for row in read_rows(trials_path):
            tid = row["trial_id"]
            self._earlier[tid] = row
            last = {
                k: v
                for k, v in row.items()
                if k not in fixed and not k.startswith("config/") and v is not None
            }
            self._records[tid] = _TrialRecord(
                last=last,
                best=row.get(best_col),
                iterations=int(row.get("iterations") or 0),
                time_total_s=row.get("time_total_s"),
                node_ip=row.get("node_ip"),
                node_id=row.get("node_id"),
            )
            if row.get("error"):
                self._errors[tid] = row["error"]
        if _exists(iterations_path):
            self._iterations = [
                {k: v for k, v in r.items() if v is not None} for r in read_rows(iterations_path)
            ]
            self._reindex()

    def _reindex(self) -> None:
        self._index = {
            (r["trial_id"], r.get("training_iteration")): i for i, r in enumerate(self._iterations)
        }

    def _forget_lost(self, trials: list[Any]) -> None:
        """Drops earlier rows of unfinished trials that the resumed run does not know.

        Ray saves its experiment state every ten seconds or so, the Parquet files more
        often: a trial created after Ray's last save is unknown to the restored run, which
        creates a new trial in its place. Finished trials are kept whatever Ray knows.
        """
        known = {trial.trial_id for trial in trials}
        lost = {
            tid
            for tid, row in self._earlier.items()
            if tid not in known and row.get("status") not in ("TERMINATED", "ERROR")
        }
        if lost:
            for tid in lost:
                del self._earlier[tid]
                self._records.pop(tid, None)
                self._errors.pop(tid, None)
            self._iterations = [r for r in self._iterations if r["trial_id"] not in lost]
            self._reindex()
            self._dirty = True
        self._pruned = True

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


def _exists(path: str) -> bool:
    if "://" in path and not path.startswith("file://"):
        from pyarrow import fs as pafs

        filesystem, fs_path = pafs.FileSystem.from_uri(path)
        return bool(filesystem.get_file_info(fs_path).type != pafs.FileType.NotFound)
    return os.path.exists(path.removeprefix("file://"))


def read_rows(path: str) -> list[dict[str, Any]]:
    """The rows of a Parquet file (local path or URI) as dicts."""
    import pyarrow.parquet as pq

    if "://" in path and not path.startswith("file://"):
        from pyarrow import fs as pafs

        filesystem, fs_path = pafs.FileSystem.from_uri(path)
        return list(pq.read_table(fs_path, filesystem=filesystem).to_pylist())
    return list(pq.read_table(path.removeprefix("file://")).to_pylist())
