"""A read-only Optuna storage over tunefleet's Parquet results, kept current as they change.

`ResultsStorage` holds one Optuna study per experiment folder; `ResultsWatcher` fills it
from a location (an experiment folder, or a storage root holding many) and refills a study
whenever its Parquet files change. Each refill replaces the study's trials at once, so a
reader never sees half of one; study and trial ids stay the same across refills (the
dashboard's page keys on them), and a folder whose experiment was rerun (`--overwrite`: a
new `started_at`) becomes a new study. Writes through the storage (the dashboard's notes,
renames, deletions) are refused: the results are only read.

    storage = ResultsStorage()
    ResultsWatcher("results", storage).refresh()
    optuna.load_study(study_name="quickstart", storage=storage).trials_dataframe()
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pyarrow.parquet as pq
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState
from pyarrow import fs as pafs

from tunefleet.experiments.analysis.dashboard_trials import objectives, optuna_trials
from tunefleet.experiments.analysis.experiment import Experiment
from tunefleet.experiments.results.files import (
    EXPLOITS_FILE,
    ITERATIONS_FILE,
    SPEC_FILE,
    TRIALS_FILE,
)
from tunefleet.experiments.results.parquet_io import METADATA_KEY
from tunefleet.experiments.spec.loading import parse_yaml

__all__ = ["ReadOnlyError", "ResultsStorage", "ResultsWatcher"]

logger = logging.getLogger(__name__)
# Optuna's key for objective names (`Study.set_metric_names`); the dashboard labels with it.
_METRIC_NAMES = "study:metric_names"


class ReadOnlyError(NotImplementedError):
    """A write to the results storage, which only reads."""


@dataclass
class _Study:
    frozen: FrozenStudy
    trials: list[FrozenTrial]


class ResultsStorage(BaseStorage):
    """An Optuna storage whose studies are snapshots of experiments, replaced whole."""

    def __init__(self, refused: Callable[[str], Exception] = ReadOnlyError) -> None:
        """`refused(message)` is raised on every write (the web app's own error type turns
        it into an answer the page shows)."""
        self._refused = refused
        self._lock = threading.Lock()
        self._studies: dict[int, _Study] = {}
        self._study_ids: dict[str, int] = {}
        self._trial_ids: dict[tuple[int, str], int] = {}
        self._trials_by_id: dict[int, tuple[int, int]] = {}  # trial id -> (study id, number)
        self._next_id = itertools.count()

    # Filled by the watcher -------------------------------------------------------------

    def study_id(self, key: str) -> int:
        """The study id for an experiment run (`<folder>@<started_at>`), stable once given."""
        with self._lock:
            return self._study_ids.setdefault(key, len(self._study_ids))

    def trial_id(self, study_id: int, name: str) -> int:
        """The Optuna trial id of a tunefleet trial, stable once given."""
        with self._lock:
            key = (study_id, name)
            if key not in self._trial_ids:
                self._trial_ids[key] = next(self._next_id)
            return self._trial_ids[key]

    def publish(self, study: FrozenStudy, trials: list[FrozenTrial]) -> None:
        """Replaces a study and its trials (numbered 0, 1, ... in order)."""
        with self._lock:  # readers hold the dict they got: replace it, never change it
            self._trials_by_id = {
                **self._trials_by_id,
                **{t._trial_id: (study._study_id, t.number) for t in trials},
            }
            self._studies = {**self._studies, study._study_id: _Study(study, trials)}

    def withdraw(self, study_id: int) -> None:
        """Removes a study (its folder is gone, or holds a new run)."""
        with self._lock:
            self._studies = {k: v for k, v in self._studies.items() if k != study_id}

    # Read by the dashboard -------------------------------------------------------------

    def _study(self, study_id: int) -> _Study:
        study = self._studies.get(study_id)
        if study is None:
            raise KeyError(f"no study with id {study_id}.")
        return study

    def get_all_studies(self) -> list[FrozenStudy]:
        return [copy.deepcopy(s.frozen) for _, s in sorted(self._studies.items())]

    def get_study_id_from_name(self, study_name: str) -> int:
        for study_id, study in sorted(self._studies.items()):
            if study.frozen.study_name == study_name:
                return study_id
        raise KeyError(f"no study named {study_name!r}.")

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._study(study_id).frozen.study_name

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return list(self._study(study_id).frozen.directions)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return copy.deepcopy(self._study(study_id).frozen.user_attrs)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return copy.deepcopy(self._study(study_id).frozen.system_attrs)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        trials = self._study(study_id).trials
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else list(trials)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        study_id, number = self._trials_by_id[trial_id]
        trials = self._study(study_id).trials
        if number >= len(trials) or trials[number]._trial_id != trial_id:
            raise KeyError(f"no trial with id {trial_id}.")
        return copy.deepcopy(trials[number])

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        trials = self._study(study_id).trials
        if not 0 <= trial_number < len(trials):
            raise KeyError(f"study {study_id} has no trial number {trial_number}.")
        return trials[trial_number]._trial_id

    # Writes: refused -------------------------------------------------------------------

    def _refuse(self, *_: Any, **__: Any) -> NoReturn:
        raise self._refused("the tunefleet dashboard only reads the experiment's results.")

    create_new_study = delete_study = set_study_user_attr = set_study_system_attr = _refuse
    create_new_trial = set_trial_param = set_trial_state_values = _refuse
    set_trial_intermediate_value = set_trial_user_attr = set_trial_system_attr = _refuse


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path of a local folder or a URI (`s3://bucket/path`)."""
    if "://" in location:
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), str(Path(location).expanduser().resolve())


@dataclass
class _Folder:
    signature: tuple[Any, ...] = ()
    failed: tuple[Any, ...] = ()
    study_id: int | None = None
    first_seen: dict[str, float] = field(default_factory=dict)


class ResultsWatcher:
    """Keeps a `ResultsStorage` in step with the experiments at a location.

    Args:
        location: An experiment folder, or a storage root whose subfolders are experiments;
            a local path or a URI (`s3://bucket/results`). It may not exist yet.
        storage: The storage to fill.
        every_s: Seconds between checks for changed files (the run rewrites them about
            every 10 s).
    """

    def __init__(self, location: str, storage: ResultsStorage, *, every_s: float = 2.0) -> None:
        self.location = location
        self.storage = storage
        self.every_s = every_s
        self._fs, self._root = filesystem(location)
        self._folders: dict[str, _Folder] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> int:
        """Checks the location once and refills the studies whose files changed.

        Returns:
            How many experiments the storage now holds.
        """
        found = self._experiment_folders()
        for path in set(self._folders) - set(found):
            gone = self._folders.pop(path)
            if gone.study_id is not None:
                self.storage.withdraw(gone.study_id)
        for path in found:
            folder = self._folders.setdefault(path, _Folder())
            signature = self._signature(path)
            if signature == folder.signature:
                continue
            try:
                self._load(path, folder)
            except Exception as exc:  # mid-rewrite on a filesystem without renames, ...
                if signature != folder.failed:  # once per version of the files
                    logger.warning("dashboard: cannot read %s (%s); retrying.", path, exc)
                folder.failed = signature
                continue
            folder.signature = signature
        return sum(f.study_id is not None for f in self._folders.values())

    def start(self) -> None:
        """Refreshes every `every_s` seconds in a background thread, until `stop`."""
        self._thread = threading.Thread(target=self._loop, name="tunefleet-dashboard-watcher")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stops the background refreshes (waits for the one under way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        failing = False
        while not self._stop.wait(self.every_s):
            try:
                self.refresh()
                failing = False
            except Exception as exc:  # the location unreachable for a while: keep serving
                if not failing:
                    logger.warning("dashboard: cannot check %s (%s).", self.location, exc)
                failing = True

    # Reading ---------------------------------------------------------------------------

    def _experiment_folders(self) -> list[str]:
        root = self._root.rstrip("/")
        if self._fs.get_file_info(f"{root}/{TRIALS_FILE}").is_file:
            return [root]
        if self._fs.get_file_info(root).type != pafs.FileType.Directory:
            return []
        children = self._fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        folders = sorted(c.path for c in children if c.type == pafs.FileType.Directory)
        infos = self._fs.get_file_info([f"{f}/{TRIALS_FILE}" for f in folders])
        return [f for f, info in zip(folders, infos, strict=True) if info.is_file]

    def _signature(self, path: str) -> tuple[Any, ...]:
        names = (TRIALS_FILE, ITERATIONS_FILE, EXPLOITS_FILE)
        infos = self._fs.get_file_info([f"{path}/{n}" for n in names])
        return tuple((i.mtime_ns, i.size) if i.is_file else None for i in infos)

    def _load(self, path: str, folder: _Folder) -> None:
        exp = self._read(path)
        name = self._name(path)
        study_id = self.storage.study_id(f"{path}@{exp.metadata.get('started_at')}")
        if folder.study_id not in (None, study_id):  # the folder holds a new run
            self.storage.withdraw(folder.study_id)
            folder.first_seen.clear()
        folder.study_id = study_id
        targets = objectives(exp)
        spec = exp.metadata.get("spec") or {}
        search, scheduler = spec.get("search") or {}, spec.get("scheduler") or {}
        attrs = {
            "folder": self._uri(path),
            "metric": ", ".join(f"{m} ({mode})" for m, mode in targets),
            "searcher": search.get("algorithm", "random"),
            "scheduler": scheduler.get("name", "fifo") if isinstance(scheduler, dict) else "",
            "description": spec.get("description"),
        }
        study = FrozenStudy(
            study_name=name,
            direction=None,
            directions=[
                StudyDirection.MAXIMIZE if mode == "max" else StudyDirection.MINIMIZE
                for _, mode in targets
            ],
            user_attrs={k: v for k, v in attrs.items() if v},
            system_attrs={_METRIC_NAMES: [m for m, _ in targets]},
            study_id=study_id,
        )
        trials = optuna_trials(exp, lambda t: self.storage.trial_id(study_id, t), folder.first_seen)
        self.storage.publish(study, trials)

    def _read(self, path: str) -> Experiment:
        trials = pq.read_table(f"{path}/{TRIALS_FILE}", filesystem=self._fs)
        iterations = pq.read_table(f"{path}/{ITERATIONS_FILE}", filesystem=self._fs)
        exploits_path = f"{path}/{EXPLOITS_FILE}"
        exploits = (
            pq.read_table(exploits_path, filesystem=self._fs).to_pandas()
            if self._fs.get_file_info(exploits_path).is_file
            else None
        )
        raw = (trials.schema.metadata or {}).get(METADATA_KEY)
        metadata = _json(raw) if raw else {}
        if not metadata.get("spec"):  # an exported run: its spec.yaml, if any
            metadata["spec"] = self._spec(path)
        return Experiment(
            trials=trials.to_pandas(),
            iterations=iterations.to_pandas(),
            exploits=exploits,
            metadata=metadata,
        )

    def _spec(self, path: str) -> dict[str, Any]:
        spec_path = f"{path}/{SPEC_FILE}"
        if not self._fs.get_file_info(spec_path).is_file:
            return {}
        with self._fs.open_input_stream(spec_path) as f:
            raw = parse_yaml(f.read().decode("utf-8"), source=spec_path)
        return raw if isinstance(raw, dict) else {}

    def _name(self, path: str) -> str:
        """The study's name: the folder's name under the root (the root's own name if it is
        the experiment)."""
        root = self._root.rstrip("/")
        return path.rsplit("/", 1)[-1] if path == root else path[len(root) + 1 :]

    def _uri(self, path: str) -> str:
        if "://" not in self.location:
            return path
        scheme = self.location.split("://", 1)[0]
        return f"{scheme}://{path}"


def _json(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}
