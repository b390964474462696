"""`tunefleet export EXPERIMENT_DIR`: rebuilds the Parquet files from Ray's experiment folder.

For an experiment whose `trials.parquet` / `iterations.parquet` are missing or stale: a run
made with Ray Tune directly, or a tunefleet run whose files were lost. Ray's own
`ExperimentAnalysis` reads the experiment state (local folder or any pyarrow filesystem URI,
`s3://...`, `gs://...`); every trial's results are replayed, in order, into the same
`ResultsRecorder` a run uses, so the columns and their types are exactly a run's.

Where the results come from, per trial:

- Ray's `result.json` (written by Ray's default loggers, as in a plain Ray Tune run): every
  result, so `iterations.parquet` is complete.
- Without it (tunefleet runs turn Ray's loggers off: the Parquet files replace them), Ray's
  saved trial state: the trial's last result, and the best value of the target metric from
  Ray's running metric analysis. `trials.parquet` is then complete, and `iterations.parquet`
  holds one row per such trial, its last result; the summary says how many trials this was.

Ray's `ExperimentAnalysis` unpickles the experiment state, which can run code: export only
folders you trust. A folder without tunefleet's `spec.yaml` gets a warning line before it is
read (`tunefleet.experiments.results.pickled_state`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyarrow import fs as pafs

from tunefleet.common.errors import TunefleetError
from tunefleet.common.locations import LocationError, locate
from tunefleet.common.logs import quiet_logger
from tunefleet.common.ray_compat import best_value_seen
from tunefleet.experiments.results.files import ITERATIONS_FILE, SPEC_FILE, TRIALS_FILE
from tunefleet.experiments.results.parquet_io import join_path as _join
from tunefleet.experiments.results.parquet_io import path_exists as _exists
from tunefleet.experiments.results.pickled_state import foreign_folder_warning
from tunefleet.experiments.results.recorder import ResultsRecorder
from tunefleet.experiments.spec.loading import SpecError, parse_yaml

__all__ = ["ExportError", "ExportSummary", "describe", "export_experiment"]

_RESULT_FILE = "result.json"


class ExportError(TunefleetError, ValueError):
    """The folder cannot be exported as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ExportSummary:
    """What `export_experiment` wrote.

    Attributes:
        experiment_dir: The experiment folder (or URI) the files were written to.
        trials: Trials exported.
        rows: Rows of `iterations.parquet`.
        last_only: Trials without Ray's `result.json`, exported from their last result.
    """

    experiment_dir: str
    trials: int
    rows: int
    last_only: int


def export_experiment(
    path: str,
    *,
    metric: str | None = None,
    mode: str | None = None,
    overwrite: bool = False,
    warn: Callable[[str], None] | None = None,
) -> ExportSummary:
    """Rebuilds `trials.parquet` and `iterations.parquet` in a Ray Tune experiment folder.

    Args:
        path: The experiment folder, `<storage_path>/<name>`: a local path or a pyarrow
            filesystem URI.
        metric: The target metric; by default the one in the folder's `spec.yaml`.
        mode: `min` or `max`; by default the one in `spec.yaml`.
        overwrite: Replace Parquet files already there.
        warn: Called with a one-line warning before Ray's state in a folder tunefleet did
            not write (no `spec.yaml`) is unpickled.

    Raises:
        ExportError: If the folder holds no Ray experiment, the metric or mode is unknown,
            or the files exist and `overwrite` is off.
    """
    if mode is not None and mode not in ("min", "max"):
        raise ExportError(f"--mode: {mode!r} is not a mode; choose min or max.")
    exp_dir = _normalize(path)
    spec = _read_spec(exp_dir)
    metric = metric or spec.get("metric")
    mode = mode or spec.get("mode")
    if not metric or mode not in ("min", "max"):
        raise ExportError(
            f"{exp_dir}: no {SPEC_FILE} names the target metric and mode; pass them, e.g. "
            "--metric score --mode max."
        )
    if not overwrite and _exists(_join(exp_dir, TRIALS_FILE)):
        raise ExportError(
            f"{exp_dir} already has {TRIALS_FILE}; pass --overwrite to rebuild it from Ray's "
            "experiment state."
        )
    trials = _ray_trials(exp_dir, warn)
    filesystem = locate(exp_dir).filesystem
    histories = {trial.trial_id: _history(trial, filesystem) for trial in trials}
    results = [
        r
        for t in trials
        for r in (histories[t.trial_id] or ([t.last_result] if t.last_result else []))
    ]
    started = min((_start(r) for r in results), default=None)
    ended = max((float(r["timestamp"]) for r in results if "timestamp" in r), default=None)
    algorithm = str((spec.get("search") or {}).get("algorithm", ""))
    info: dict[str, Any] = {"experiment": exp_dir.rstrip("/").rpartition("/")[2]}
    if spec:
        info["spec"] = spec
    recorder = ResultsRecorder(
        exp_dir,
        metric=str(metric),
        mode=str(mode),
        info=info,
        population_based=algorithm in ("pbt", "pb2"),
        started_at=started,
    )
    last_only = 0
    for trial in trials:
        recorder.on_trial_start(0, trials, trial)
        history = histories[trial.trial_id]
        from_state = history is None
        if history is None:
            last_only += 1
            history = [trial.last_result] if trial.last_result else []
        for result in history:
            if result.get("trial_id") != trial.trial_id:  # as Ray's controller does
                result = {**result, "trial_id": trial.trial_id}
            recorder.on_trial_result(0, trials, trial, result)
        if from_state:
            best = best_value_seen(trial, str(metric), str(mode))
            if best is not None:
                recorder.note_best(trial.trial_id, best)
        if str(trial.status) == "ERROR":
            recorder.on_trial_error(0, trials, trial)
        elif str(trial.status) == "TERMINATED":
            recorder.on_trial_complete(0, trials, trial)
    recorder.flush(ended_at=ended)
    return ExportSummary(
        experiment_dir=exp_dir,
        trials=len(trials),
        rows=recorder.iterations_table().num_rows,
        last_only=last_only,
    )


def _normalize(path: str) -> str:
    try:
        folder = locate(path)
    except LocationError as exc:
        raise ExportError(str(exc)) from None
    if not folder.is_dir():
        why = folder.missing() if folder.remote else "not found"
        cause = f" ({why})" if why != "not found" else ""
        raise ExportError(
            f"{folder}: no such folder{cause}; give the experiment folder Ray Tune wrote "
            "(<storage_path>/<name>)."
        )
    # A URI as given (file:// included: Ray reads it as such); a local path made absolute.
    return path.rstrip("/") if "://" in path else folder.uri


def _read_text(path: str) -> str | None:
    """A small file's text (local or on an object store), or None if it is not there."""
    location = locate(path)
    if not location.is_file():
        return None
    return location.read_bytes().decode("utf-8", errors="replace")


def _read_spec(exp_dir: str) -> dict[str, Any]:
    text = _read_text(_join(exp_dir, SPEC_FILE))
    if text is None:
        return {}
    try:
        raw = parse_yaml(text, source=_join(exp_dir, SPEC_FILE))
    except SpecError as exc:
        raise ExportError(f"{exc} Pass --metric and --mode, or fix the file.") from None
    return raw if isinstance(raw, dict) else {}


def _ray_trials(exp_dir: str, warn: Callable[[str], None] | None = None) -> list[Any]:
    # Ray loads on first use (about a second), not when this module is imported.
    from ray.tune import ExperimentAnalysis, Tuner

    # Before the state is unpickled, and only when there is one (otherwise: the error below).
    warning = foreign_folder_warning(exp_dir, "export")
    if warn is not None and warning is not None and Tuner.can_restore(exp_dir):
        warn(warning)

    # Ray warns for every trial without result.json (the usual case for tunefleet runs);
    # the summary says how many there were.
    with quiet_logger("ray.tune.analysis.experiment_analysis"):
        try:
            analysis = ExperimentAnalysis(exp_dir)
        except (ValueError, FileNotFoundError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(
                f"{exp_dir}: no Ray experiment state here ({first.rstrip('.')}); give the "
                "folder Ray Tune wrote, <storage_path>/<name>."
            ) from None
    # In the order Ray created them (a run's trial ids count up).
    return sorted(analysis.trials, key=lambda t: str(t.trial_id))


def _history(trial: Any, filesystem: Any) -> list[dict[str, Any]] | None:
    """Every result in the trial's `result.json`, or None when there is none.

    `trial.path` is the trial's folder on the experiment's filesystem (`ExperimentAnalysis`
    points it at the folder it read, wherever the experiment was first written).
    """
    fs_path = f"{trial.path}/{_RESULT_FILE}"
    if filesystem.get_file_info(fs_path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(fs_path) as f:
        text = bytes(f.readall()).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _start(result: Mapping[str, Any]) -> float:
    timestamp = float(result.get("timestamp") or 0.0)
    return timestamp - float(result.get("time_total_s") or 0.0)


def describe(summary: ExportSummary) -> str:
    """What the CLI prints: the files written, and a note for trials without history."""
    where = summary.experiment_dir
    lines = [
        f"exported {summary.trials} trials, {summary.rows} iteration rows: "
        f"{where}/{TRIALS_FILE}, {where}/{ITERATIONS_FILE}"
    ]
    if summary.last_only:
        lines.append(
            f"note: {summary.last_only} of {summary.trials} trials had no Ray {_RESULT_FILE} "
            "(tunefleet runs turn Ray's loggers off): iterations.parquet holds only their "
            "last result; trials.parquet is complete."
        )
    return "\n".join(lines)
