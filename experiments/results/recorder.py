"""Experiment results as Parquet: `trials.parquet` and `iterations.parquet`.

A Ray Tune callback on the driver records every result as it arrives and writes both files
during the run (each time Ray saves its experiment state, every `results.flush_every_s`
seconds, so the files and the state `resume` restores agree) and when it ends. Files are replaced
atomically (written to a temporary name, then renamed), so a reader, or a crash, never sees
a half-written file. During a run, writes to an object store go on a thread of their own
and ride through the store's blips (`tunefleet.experiments.results.storage_outage`). The
columns and metadata keys are documented in experiments/SCHEMA.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from ray.tune import Callback

from tunefleet.common.locations import Location, locate
from tunefleet.common.ray_compat import pbt_log_path
from tunefleet.experiments.results.files import EXPLOITS_FILE, ITERATIONS_FILE, TRIALS_FILE
from tunefleet.experiments.results.iteration_log import COMPACT_EVERY, IterationLog
from tunefleet.experiments.results.pareto import mark_pareto
from tunefleet.experiments.results.parquet_io import (
    METADATA_KEY,
    build_table,
    flatten,
    read_metadata,
    user_metrics,
    versions,
    with_experiment,
    write_parquet_atomic,
)
from tunefleet.experiments.results.parquet_io import join_path as _join
from tunefleet.experiments.results.pbt_log import read_exploits
from tunefleet.experiments.results.storage_outage import BackgroundWrites, run_outage
from tunefleet.experiments.results.trial_rows import (
    Target,
    TrialRecord,
    error_summary,
    read_earlier,
)
from tunefleet.search.searcher_wrappers import target_problem

__all__ = [
    "METADATA_KEY",
    "ResultsRecorder",
    "error_summary",
    "flatten",
    "read_metadata",
    "write_parquet_atomic",
]


class ResultsRecorder(Callback):
    """Records every trial result on the driver and keeps the Parquet files current.

    Args:
        experiment_dir: Local directory (or pyarrow filesystem URI) of the experiment.
        metric: The target metric; its best value per trial gets a `best/<metric>` column.
        mode: `min` or `max`.
        info: Experiment-level metadata (the spec, ...) stored in every file's metadata.
        population_based: PBT/PB2 run: configs change within a trial, so every iteration
            row carries the config it ran with, and the exploits go to `exploits.parquet`.
        started_at: Unix time the experiment started (default: now).
        objectives: Multi-objective runs: every (metric, mode); `metric` is the first. The
            trials get a `pareto` column (see `tunefleet.experiments.results.pareto`).
    """

    def __init__(
        self,
        experiment_dir: str,
        *,
        metric: str,
        mode: str,
        info: Mapping[str, Any],
        population_based: bool = False,
        started_at: float | None = None,
        objectives: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.experiment_dir = experiment_dir
        self.target = Target(metric, mode)
        self.info = {**info, "metric": metric, "mode": mode, "versions": versions()}
        # Multi-objective: (metric, mode) pairs; trials.parquet gets a `pareto` column.
        self.objectives = list(objectives) if len(objectives) > 1 else []
        if self.objectives:
            self.info["objectives"] = [list(pair) for pair in self.objectives]
        self.population_based = population_based
        self._tags: dict[str, str] = {}  # original experiment tag -> trial id (PBT's log)
        self._records: dict[str, TrialRecord] = {}
        self._log = IterationLog(
            metric=metric, mode=mode, population_based=population_based
        )  # iterations.parquet
        self._earlier: dict[str, dict[str, Any]] = {}  # trials.parquet rows of earlier runs
        self._pruned = False
        self._trials: list[Any] = []
        self._errors: dict[str, str] = {}
        self._invalid: dict[str, str] = {}  # trial id -> why its target metric is unusable
        self._saved_status: dict[str, str] = {}  # trial statuses at Ray's last state save
        self._started: set[str] = set()  # trials that ran in this run
        self._interrupted: dict[str, str] = {}  # statuses before an interrupt stopped trials
        self._dirty = False
        self._written = False
        self._ray_saved = False
        self.started_at = time.time() if started_at is None else started_at
        self._run_started = self.started_at
        self._earlier_wall_s = 0.0  # run time of earlier runs of this experiment (resume)
        self._writes: BackgroundWrites | None = None  # an object store's, during a run
        self._files: dict[str, Location] = {}  # file name -> where it is written

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
        if self._location(TRIALS_FILE).remote:
            self._writes = BackgroundWrites(run_outage(self.experiment_dir, self.info))

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self._earlier and not self._pruned:
            self._forget_lost(trials)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        # One append here (Ray's controller has put the trial's id in the result); the
        # results become Arrow columns in bulk (`_catch_up`).
        incoming = self._log.incoming
        incoming.append(result)
        if len(incoming) >= COMPACT_EVERY:
            self._catch_up()
        self._trials = trials
        self._dirty = True

    def pending_results(self) -> int:
        """Results received and not yet converted to Arrow columns."""
        return len(self._log.incoming)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._tags.setdefault(trial.experiment_tag, trial.trial_id)
        self._started.add(trial.trial_id)
        self._trials = trials

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        problem = self.metric_problem(trial)
        if problem is not None:
            self._invalid[trial.trial_id] = problem
        self._trials = trials
        self._dirty = True

    def metric_problem(self, trial: Any) -> str | None:
        """Why a finished trial's last result has no usable target value, or None.

        Such a trial is reported to the searcher as failed (`FiniteTarget`), and is never
        the best trial.
        """
        last = flatten(trial.last_result or {})
        problem = target_problem(last, self.target.metric)
        if problem is None:
            return None
        iteration = last.get("training_iteration")
        if self.target.metric not in last:
            reported = sorted(user_metrics(trial.last_result or {}).keys() - {"node_id"})
            shown = ", ".join(reported[:5]) + (", ..." if len(reported) > 5 else "")
            where = f"reported: {shown}" if reported else "no result reported"
            return f"{problem} ({where}); the searcher counted the trial as failed"
        at = f" at iteration {iteration}" if iteration is not None else ""
        return f"{problem}{at}; the searcher counted the trial as failed"

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._errors[trial.trial_id] = error_summary(trial)
        self._trials = trials
        self._dirty = True

    def get_state(self) -> None:
        """Called by Ray each time it saves its experiment state (what `resume` restores);
        the files are rewritten right after, in the same step, so that they never show a
        trial finished that the saved state does not know."""
        self._ray_saved = True
        self._saved_status = {t.trial_id: str(t.status) for t in self._trials}

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._trials = trials
        if self._writes is not None:
            self._writes.check()  # a store that failed for good, or for too long, stops the run
        if self._dirty and self._ray_saved:
            self._flush(wait=False)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """On Ctrl-C, Ray saves its state one last time and then stops the running trials,
        which marks them TERMINATED; the files keep the statuses of that last save (what
        `resume` restores and continues), so an interrupted run never reads as finished."""
        self._trials = trials
        unfinished = {"RUNNING", "PENDING", "PAUSED"}
        if any(status in unfinished for status in self._saved_status.values()):
            self._interrupted = {
                tid: status for tid, status in self._saved_status.items() if status in unfinished
            }
        self.flush()

    def _status(self, trial: Any) -> str:
        return self._interrupted.get(trial.trial_id) or str(trial.status)

    def _ran(self) -> list[Any]:
        """This run's trials, less those Ray created but never started and then marked
        TERMINATED when the search ended early (`time_budget_s`, a budget stopper): they
        are not trials of the experiment (an interrupted run keeps them, as PENDING)."""
        return [
            t
            for t in self._trials
            if t.trial_id in self._started
            or (getattr(t, "last_result", None) or {}).get("training_iteration")
            or self._status(t) != "TERMINATED"
        ]

    # Reading back --------------------------------------------------------------------

    @property
    def trials(self) -> list[Any]:
        """Ray's trial objects as last seen."""
        return list(self._trials)

    def invalid_metrics(self) -> dict[str, str]:
        """Finished trials whose target metric was NaN, infinite or missing, and why."""
        return dict(self._invalid)

    def statuses(self) -> dict[str, int]:
        """Trials by status, this run's and earlier runs' (extend) together."""
        counts: dict[str, int] = {}
        current = {t.trial_id for t in self._trials}
        earlier = [row["status"] for tid, row in self._earlier.items() if tid not in current]
        for status in [*earlier, *(self._status(t) for t in self._ran())]:
            counts[status] = counts.get(status, 0) + 1
        return counts

    def best_trial(self) -> tuple[str, float, dict[str, Any]] | None:
        """(trial id, best value of the target metric, config) of the best trial that has
        not failed."""
        self._catch_up()
        best: tuple[str, float, dict[str, Any]] | None = None
        candidates = [(t.trial_id, self._status(t), dict(t.config)) for t in self._trials]
        current = {tid for tid, _, _ in candidates}
        for tid, row in self._earlier.items():
            if tid not in current:
                config = {
                    k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")
                }
                candidates.insert(0, (tid, str(row["status"]), config))
        for tid, status, config in candidates:
            record = self._records.get(tid)
            if status == "ERROR" or record is None or tid in self._invalid:
                continue  # a failed trial's model is not one to pick
            if record.best is not None and self.target.better(
                record.best, best[1] if best else None
            ):
                best = (tid, float(record.best), config)
        return best

    # Writing -------------------------------------------------------------------------

    def flush(self, *, ended_at: float | None = None) -> None:
        """Writes the Parquet files now (during a run on an object store, waits until they
        are written, riding through the store's blips for up to `results.storage_outage_s`).

        Args:
            ended_at: Unix time the results end (`tunefleet export`); default: now.

        Raises:
            LocationError: If the object store cannot be written.
        """
        self._flush(ended_at=ended_at, wait=True)

    def _flush(self, *, ended_at: float | None = None, wait: bool) -> None:
        files = self._snapshot(ended_at)
        if self._writes is None:
            self._write(files)  # if it raises, nothing is marked written
            self._dirty = self._ray_saved = False
            return
        self._dirty = self._ray_saved = False  # the writes hold them until written
        self._writes.submit(lambda: self._write(files))
        if wait:
            self._writes.wait()

    def _write(self, files: list[tuple[Location, pa.Table, dict[str, Any]]]) -> None:
        for location, table, meta in files:
            write_parquet_atomic(table, location, meta)
        self._written = True

    def _snapshot(
        self, ended_at: float | None = None
    ) -> list[tuple[Location, pa.Table, dict[str, Any]]]:
        """Every file to write, with what it holds now."""
        now = time.time() if ended_at is None else ended_at
        meta = {
            # Lists other callbacks append to (the slot changes) are copied: the writes may
            # run on another thread.
            **{k: list(v) if isinstance(v, list) else v for k, v in self.info.items()},
            "started_at": self.started_at,
            "written_at": now,
            "wall_s": self._earlier_wall_s + (now - self._run_started),
        }
        name = str(
            self.info.get("experiment") or self.experiment_dir.rstrip("/").rpartition("/")[2]
        )
        tables = {TRIALS_FILE: self.trials_table(), ITERATIONS_FILE: self.iterations_table()}
        if self.population_based:
            exploits = self.exploits_table()
            if exploits.num_rows:
                tables[EXPLOITS_FILE] = exploits
        return [(self._location(f), with_experiment(t, name), meta) for f, t in tables.items()]

    def _location(self, file: str) -> Location:
        """Where `file` goes, located once (S3 looks up the bucket's region each time)."""
        if file not in self._files:
            self._files[file] = locate(_join(self.experiment_dir, file))
        return self._files[file]

    @property
    def needs_flush(self) -> bool:
        """Whether the files lack results recorded (or were never written by this recorder)."""
        pending = self._writes is not None and self._writes.pending
        return self._dirty or not self._written or pending

    def trials_table(self) -> pa.Table:
        """One row per trial, in the order Ray created them (earlier runs' trials first)."""
        self._catch_up()
        best_col = f"best/{self.target.metric}"
        current = {trial.trial_id for trial in self._trials}
        rows = [row for tid, row in self._earlier.items() if tid not in current]
        for trial in self._ran():
            record = self._records.get(trial.trial_id, TrialRecord())
            row: dict[str, Any] = {"trial_id": trial.trial_id, "status": self._status(trial)}
            row.update({f"config/{k}": v for k, v in flatten(trial.config).items()})
            row.update(record.last)
            row[best_col] = record.best
            row["iterations"] = record.iterations
            row["time_total_s"] = record.time_total_s
            row["node_ip"] = record.node_ip
            row["node_id"] = record.node_id
            row["error"] = self._errors.get(trial.trial_id)
            row["invalid_metric"] = self._invalid.get(trial.trial_id)
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
            "invalid_metric",
        ]
        if self.objectives:
            mark_pareto(rows, self.objectives)
            fixed.append("pareto")
        return build_table(rows, fixed)

    def _load_existing(self) -> None:
        earlier = read_earlier(self.experiment_dir, self.target.metric)
        if earlier is None:
            return
        if earlier.started_at is not None:
            self.started_at = earlier.started_at  # the first run's start
            self._earlier_wall_s = earlier.wall_s
        self._earlier = earlier.rows
        self._records.update(earlier.records)
        self._errors.update(earlier.errors)
        self._invalid.update(earlier.invalid)
        if earlier.iterations is not None:
            self._log.load(earlier.iterations)

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
                self._invalid.pop(tid, None)
            self._catch_up()
            self._log.drop_trials(lost)
            self._dirty = True
        self._pruned = True

    def iterations_table(self) -> pa.Table:
        """One row per reported result."""
        self._catch_up()
        return self._log.table()

    def note_best(self, trial_id: str, value: float) -> None:
        """Takes a trial's best value of the target metric from elsewhere (Ray's metric
        analysis, when `tunefleet export` has only the trial's last result)."""
        self._catch_up()
        record = self._records.setdefault(trial_id, TrialRecord())
        if self.target.better(value, record.best):
            record.best = float(value)

    def _catch_up(self) -> None:
        """Turns the results not yet converted into Arrow columns, and updates each
        trial's summary (last values, best value, iterations, node) from them."""
        for tid, last in self._log.compact().items():
            record = self._records.setdefault(tid, TrialRecord())
            best = last.pop("_best")
            if self.target.better(best, record.best):
                record.best = float(best)
            record.iterations = int(last.pop("training_iteration", None) or record.iterations)
            record.time_total_s = last.pop("time_total_s", record.time_total_s)
            record.node_ip = last.pop("node_ip", record.node_ip)
            record.node_id = last.pop("node_id", None) or record.node_id
            for key in ("trial_id", "time_this_iter_s", "timestamp"):
                last.pop(key, None)
            record.last.update(
                {k: v for k, v in last.items() if v is not None and not k.startswith("config/")}
            )

    def exploits_table(self) -> pa.Table:
        """PBT: one row per exploit (which trial copied which, into what config)."""
        rows = read_exploits(pbt_log_path(self._trials[0]), self._tags) if self._trials else []
        fixed = ["trial_id", "training_iteration", "cloned_from", "cloned_iteration"]
        return build_table(rows, fixed)
