"""The experiment folder of a run, left as it was found when the run fails before a trial.

    folder = ExperimentFolder("results/quickstart", overwrite=False)  # checked: Ray not started
    with connect(...), folder.claimed():  # taken once Ray is up
        ...  # write spec.yaml, run the baseline, build the tuner, fit
             # with folder.on_first_trial() among the tuner's callbacks

Taking the folder creates it (and missing parents); with `overwrite`, an experiment already
there is moved aside (renamed within its parent, so nothing is copied), and deleted only when
the first trial starts. If the block raises before that (Ray cannot be reached, the baseline
or the search fails to start, Ctrl-C), what the run wrote is removed and the old experiment
moved back: a rerun of the same command proceeds as if nothing had happened.

On an object store (`s3://...`) the check also reaches the store, before Ray starts: a
missing bucket, refused credentials or an unreachable endpoint end the run in one line. A
prefix there cannot be moved aside: with `overwrite`, the experiment in it is deleted when
the run takes the folder, and nothing is restored.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyarrow.fs import FileType
from ray.tune import Callback

from tunefleet.common.errors import TunefleetError
from tunefleet.common.locations import LocationError, is_uri, locate

__all__ = ["ExperimentFolder", "RunError"]


class RunError(TunefleetError, ValueError):
    """The run cannot start as asked (e.g. its results folder is taken)."""


class ExperimentFolder:
    """`<storage>/<name>`, checked at once and taken for the duration of a run.

    Args:
        path: The experiment folder: a local path, or a URI.
        overwrite: Replace an experiment already in the folder (once a trial starts).

    Raises:
        RunError: If the folder holds an experiment and `overwrite` is off, or a file stands
            where the folder or one of its parents should be.
        LocationError: If an object store's bucket is missing, refuses the credentials or
            cannot be reached.
    """

    def __init__(self, path: str, *, overwrite: bool) -> None:
        self.path = path
        self.overwrite = overwrite
        self._local = not is_uri(path)
        self._made: list[Path] = []  # folders this run created, the experiment's first
        self._aside: Path | None = None  # holds the replaced experiment until a trial starts
        self._started = False
        self._check()

    def _check(self) -> bool:
        """Whether the folder holds something (allowed only with `overwrite`)."""
        if not self._local:
            return self._check_remote()
        target = Path(self.path)
        existing = next((p for p in (target, *target.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise RunError(
                f"--storage: {existing} is a file, not a folder; give a folder for the results "
                "(it is created if missing)."
            )
        held = target.exists() and any(target.iterdir())
        if held and not self.overwrite:
            raise RunError(
                f"{target} already holds an experiment; pass --overwrite to replace it, or "
                "--name NEW to keep both."
            )
        return held

    @contextmanager
    def claimed(self) -> Iterator[None]:
        """Takes the folder for the block; puts it back as found if the block raises before
        the first trial started (see `on_first_trial`).

        Raises:
            RunError: If the folder was taken since the check (another run, say).
        """
        self._take()
        try:
            yield
        except BaseException:
            if not self._started:
                self._restore()
            raise
        self.trial_started()  # the run ended normally: what it replaced is gone for good

    def on_first_trial(self) -> Any:
        """A Ray Tune callback that calls `trial_started` when a trial starts."""
        return _FirstTrial(self)

    def trial_started(self) -> None:
        """A trial started: the run's folder stays, and the experiment it replaced goes."""
        self._started = True
        if self._aside is not None:
            shutil.rmtree(self._aside, ignore_errors=True)
            self._aside = None

    def _check_remote(self) -> bool:
        location = locate(self.path)
        kind = location.kind()  # LocationError: refused credentials, unreachable endpoint
        if kind == FileType.NotFound:
            why = location.missing()
            if why != "not found":
                raise LocationError(f"--storage: {location.parent}: {why}; create it first.")
            return False
        if kind == FileType.File:
            raise RunError(f"--storage: {location} is a file, not a folder; give a folder prefix.")
        if not self.overwrite:
            raise RunError(
                f"{location} already holds an experiment; pass --overwrite to replace it, or "
                "--name NEW to keep both."
            )
        return True

    def _take(self) -> None:
        if not self._local:
            if self._check():
                locate(self.path).delete_contents()
            return
        target = Path(self.path)
        if self._check():  # overwrite: set the old experiment aside, beside it
            self._aside = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent)
            )
            target.rename(self._aside / target.name)
        self._made = [p for p in (target, *target.parents) if not p.exists()]
        target.mkdir(parents=True, exist_ok=True)

    def _restore(self) -> None:
        if not self._local:
            return
        target = Path(self.path)
        if target.exists():
            shutil.rmtree(target)  # only what this run wrote: anything older was set aside
            if target not in self._made and self._aside is None:
                target.mkdir()  # it was there, empty
        if self._aside is not None:
            (self._aside / target.name).rename(target)
            self._aside.rmdir()
            self._aside = None
        for parent in self._made[1:]:  # parents this run created, if nothing else uses them
            try:
                parent.rmdir()
            except OSError:
                break


class _FirstTrial(Callback):
    def __init__(self, folder: ExperimentFolder) -> None:
        self.folder = folder

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.folder.trial_started()
