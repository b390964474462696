"""Reading one experiment's Parquet results back into pandas, and the questions asked of them.

    exp = load("results/quickstart")
    exp.best()                # the best trial's row
    exp.top(5)                # a leaderboard
    exp.learning_curves()     # training_iteration x trial_id
    exp.importance()          # fANOVA importance of each searched hyperparameter

The files and their columns are described in README.md, "Results".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunefleet.common.locations import locate
from tunefleet.experiments.analysis.errors import AnalysisError
from tunefleet.experiments.analysis.importance import fanova_importance
from tunefleet.experiments.results.files import EXPLOITS_FILE, ITERATIONS_FILE, TRIALS_FILE
from tunefleet.experiments.results.iteration_log import FIXED
from tunefleet.experiments.results.parquet_io import read_frame, read_metadata
from tunefleet.search import (
    Space,
    SpaceError,
    parse_space,
)

__all__ = ["AnalysisError", "Experiment", "load", "load_all"]

# Columns of iterations.parquet that are not metrics.
_ITERATION_FIELDS = frozenset({"experiment", *FIXED})


@dataclass(frozen=True, eq=False)
class Experiment:
    """One experiment's results, as read from `<storage>/<name>/`.

    Attributes:
        trials: `trials.parquet`, one row per trial, in the order trials were created.
        iterations: `iterations.parquet`, one row per reported result.
        exploits: `exploits.parquet` for population-based runs (who copied whom), else None.
        metadata: The experiment metadata: spec, metric, mode, versions, started_at, ...
        path: The folder the files were read from, if any: a local path, or the URI of a
            folder on an object store.
    """

    trials: pd.DataFrame
    iterations: pd.DataFrame
    exploits: pd.DataFrame | None
    metadata: dict[str, Any]
    path: Path | str | None = None

    # What the experiment is -----------------------------------------------------------

    @property
    def name(self) -> str:
        """The experiment's name (its folder under the storage root)."""
        folder = str(self.path).rstrip("/").rpartition("/")[2] if self.path else ""
        name = self.metadata.get("experiment") or folder
        return str(name or "experiment")

    @property
    def metric(self) -> str:
        """The target metric."""
        metric = self.metadata.get("metric") or self.metadata.get("spec", {}).get("metric")
        if metric:
            return str(metric)
        best = [c for c in self.trials.columns if c.startswith("best/")]
        if len(best) == 1:
            return best[0].removeprefix("best/")
        raise AnalysisError("the results carry no target metric in their metadata.")

    @property
    def mode(self) -> str:
        """`min` or `max`."""
        mode = self.metadata.get("mode") or self.metadata.get("spec", {}).get("mode")
        if mode not in ("min", "max"):
            raise AnalysisError(f"the results' metadata has no mode (min or max), got {mode!r}.")
        return str(mode)

    @property
    def best_column(self) -> str:
        """`best/<metric>`: each trial's best value of the target metric."""
        return f"best/{self.metric}"

    @cached_property
    def space(self) -> Space | None:
        """The search space as run (from the spec in the metadata), or None if unknown."""
        raw = self.metadata.get("spec", {}).get("space")
        if raw is None:
            return None
        try:
            return parse_space(raw)
        except SpaceError:
            return None

    @cached_property
    def searched(self) -> tuple[str, ...]:
        """Flat names (`model/depth`) of the hyperparameters that varied between trials."""
        names: Iterable[str]
        if self.space is not None:
            names = self.space.searched
        else:  # no spec: every config column that takes more than one value
            names = [
                c.removeprefix("config/")
                for c in self.trials.columns
                if c.startswith("config/") and self.trials[c].astype(str).nunique() > 1
            ]
        return tuple(n for n in names if f"config/{n}" in self.trials.columns)

    @property
    def wall_s(self) -> float | None:
        """Seconds the experiment ran: every run's time added up (`resume` adds runs), or for
        older files the time from the start to the last write of the results."""
        if self.metadata.get("wall_s") is not None:
            return float(self.metadata["wall_s"])
        start, end = self.metadata.get("started_at"), self.metadata.get("written_at")
        if start is None or end is None:
            return None
        return float(end) - float(start)

    def metrics(self) -> list[str]:
        """The metrics the trainable reported (columns of `iterations`)."""
        return [
            c
            for c in self.iterations.columns
            if c not in _ITERATION_FIELDS and not c.startswith("config/")
        ]

    # Questions ------------------------------------------------------------------------

    def _ranked(self) -> pd.DataFrame:
        """Trials that did not fail and reported the metric, best first."""
        best = self.best_column
        if best not in self.trials.columns:
            return self.trials.iloc[0:0]
        ok = self.trials[(self.trials["status"] != "ERROR") & self.trials[best].notna()]
        return ok.sort_values(best, ascending=self.mode == "min", kind="stable")

    def best(self) -> pd.Series:
        """The row of `trials` of the best trial that did not fail.

        Raises:
            AnalysisError: If no such trial reported the target metric.
        """
        ranked = self._ranked()
        if ranked.empty:
            raise AnalysisError(f"no trial reported {self.metric!r} without failing.")
        return ranked.iloc[0]

    def pareto(self) -> pd.DataFrame:
        """Multi-objective experiments: the Pareto-optimal trials (the `pareto` column of
        `trials`), ranked by the first metric like `best` and `top`.

        Raises:
            AnalysisError: If the experiment had a single metric (no `pareto` column).
        """
        if "pareto" not in self.trials.columns:
            raise AnalysisError(
                f"{self.name} optimized one metric ({self.metric}); a Pareto front needs a "
                "spec with a list of metrics (multi-objective)."
            )
        front = self.trials[self.trials["pareto"].fillna(False).astype(bool)]
        ascending = self.mode == "min"
        return front.sort_values(self.metric, ascending=ascending, kind="stable")

    def top(self, k: int = 5) -> pd.DataFrame:
        """A leaderboard of the `k` best trials that did not fail, best first.

        Args:
            k: How many trials.

        Returns:
            Columns `trial_id`, `status`, `iterations`, `best/<metric>`, `<metric>` (the last
            reported value) and `config/<param>` for each searched hyperparameter; the index
            is the rank, from 1.
        """
        columns = ["trial_id", "status", "iterations", self.best_column, self.metric]
        columns += [f"config/{n}" for n in self.searched]
        ranked = self._ranked()
        out = ranked[[c for c in columns if c in ranked.columns]].head(k).reset_index(drop=True)
        out.index = pd.RangeIndex(1, len(out) + 1, name="rank")
        return out

    def configs(self) -> pd.DataFrame:
        """The trials grouped by their searched config, best mean first: with
        `search.repeat: N`, each config ran N times with different seeds, and this is the
        aggregate the searcher saw (Ray's `Repeater` hands it the mean).

        Returns:
            One row per config: its `config/<param>` values, then `trials`, and the `mean`
            and `std` over its trials of `best/<metric>` (std is NaN for a single trial).

        Raises:
            AnalysisError: If the spec searched no parameter.
        """
        keys = [f"config/{n}" for n in self.searched]
        ranked = self._ranked()
        keys = [k for k in keys if k in ranked.columns]
        if not keys:
            raise AnalysisError(f"{self.name} searched no parameter; there is nothing to group.")
        stats = ranked.groupby(keys, dropna=False, sort=False)[self.best_column].agg(
            ["count", "mean", "std"]
        )
        stats = stats.rename(columns={"count": "trials"}).reset_index()
        return stats.sort_values("mean", ascending=self.mode == "min", kind="stable").reset_index(
            drop=True
        )

    def learning_curves(self, metric: str | None = None) -> pd.DataFrame:
        """One column per trial (in trial order), indexed by `training_iteration`.

        Args:
            metric: A reported metric; the target metric by default.
        """
        metric = self._reported(metric)
        rows = self.iterations[["training_iteration", "trial_id", metric]].drop_duplicates(
            ["training_iteration", "trial_id"], keep="last"
        )
        curves = rows.pivot(index="training_iteration", columns="trial_id", values=metric)
        order = [t for t in self.trials["trial_id"] if t in curves.columns]
        known = set(order)
        curves = curves[order + [t for t in curves.columns if t not in known]]
        curves.columns.name = "trial_id"
        return curves.sort_index()

    def best_so_far(self) -> pd.DataFrame:
        """The best value found so far, over trials in the order their last result arrived.

        Returns:
            One row per trial that reported anything: `trial_id`, `status`, `wall_s` (seconds
            from the experiment's start to the trial's last result), `value` (the trial's
            `best/<metric>`; NaN for a failed trial, which is not one to pick) and
            `best_so_far`. The index counts trials from 1.
        """
        last = self.iterations.groupby("trial_id", sort=False)["timestamp"].max()
        trials = self.trials.assign(_order=np.arange(len(self.trials)))
        trials = trials[trials["trial_id"].isin(last.index)]
        trials = trials.assign(_last=trials["trial_id"].map(last).astype(float))
        trials = trials.sort_values(["_last", "_order"], kind="stable")
        start = self.metadata.get("started_at", trials["_last"].min() if len(trials) else 0.0)
        value = trials.get(self.best_column, pd.Series(np.nan, index=trials.index)).astype(float)
        value = value.where(trials["status"] != "ERROR")
        running = value.cummax() if self.mode == "max" else value.cummin()
        out = pd.DataFrame(
            {
                "trial_id": trials["trial_id"].to_numpy(),
                "status": trials["status"].to_numpy(),
                "wall_s": (trials["_last"] - float(start)).clip(lower=0.0).to_numpy(),
                "value": value.to_numpy(),
                "best_so_far": running.ffill().to_numpy(),
            }
        )
        out.index = pd.RangeIndex(1, len(out) + 1, name="trial")
        return out

    def importance(
        self, metric: str | None = None, *, max_trials: int = 500, seed: int = 0
    ) -> pd.Series:
        """Importance of each searched hyperparameter by fANOVA (Optuna's evaluator).

        The trials that did not fail and reported the metric become an in-memory Optuna
        study, with the distributions Ray's `OptunaSearch` would use for the spec's space.
        fANOVA's cost grows faster than the number of trials (about 7 s for 500 trials and
        100 s for 2,000 on 2 cores), so larger experiments are sampled.

        Args:
            metric: A column of `trials`; by default the target metric's `best/<metric>`.
            max_trials: Use a random sample of this many trials when there are more.
            seed: Seeds the sample and fANOVA's random forest.

        Returns:
            Hyperparameter name -> importance (summing to 1), most important first.

        Raises:
            AnalysisError: If the space is unknown, or fewer than 2 trials can be used.
        """
        column = self.best_column if metric in (None, self.metric) else str(metric)
        if column not in self.trials.columns:
            raise AnalysisError(f"trials.parquet has no column {column!r}.")
        if self.space is None:
            raise AnalysisError("importance needs the spec's space, which the metadata lacks.")
        params = {n: self.space.params[n] for n in self.searched if n in self.space.params}
        if not params:
            raise AnalysisError("the space has no searched hyperparameter to rank.")
        rows = self.trials[
            (self.trials["status"] != "ERROR")
            & pd.to_numeric(self.trials[column], errors="coerce").notna()
        ]
        if len(rows) > max_trials:
            rows = rows.sample(max_trials, random_state=seed)
        return fanova_importance(rows, params, column, self.mode, seed)

    def _reported(self, metric: str | None) -> str:
        metric = metric or self.metric
        if metric not in self.iterations.columns:
            reported = ", ".join(self.metrics()) or "none"
            raise AnalysisError(
                f"metric {metric!r} is not in {ITERATIONS_FILE}; reported metrics: {reported}."
            )
        return metric


def load(path: str | Path) -> Experiment:
    """Reads one experiment folder (`<storage>/<name>/`), local or on an object store.

    Args:
        path: The experiment folder (or its `trials.parquet`): a local path or a URI such
            as `s3://bucket/results/quickstart`.

    Raises:
        AnalysisError: If a results file is missing; the message says which and what to do.
        LocationError: If the object store cannot be read (missing bucket, refused
            credentials, unreachable endpoint); the message says which.
    """
    folder = locate(path)
    if folder.name == TRIALS_FILE and folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        why = folder.missing() if folder.remote else ""
        cause = f" ({why})" if why and why != "not found" else ""
        raise AnalysisError(f"{folder} is not a folder{cause}; pass an experiment folder.")
    trials_path = folder / TRIALS_FILE
    if not trials_path.is_file():
        inside = [f.name for f in folder.folders() if (f / TRIALS_FILE).is_file()]
        hint = (
            f"it holds the experiments {', '.join(inside)}: pass one of them (or use load_all)."
            if inside
            else "run `tunefleet run SPEC.yaml` first, or pass the folder `<storage>/<name>`."
        )
        raise AnalysisError(f"{folder} has no {TRIALS_FILE}; {hint}")
    iterations_path = folder / ITERATIONS_FILE
    if not iterations_path.is_file():
        raise AnalysisError(
            f"{folder} has {TRIALS_FILE} but no {ITERATIONS_FILE}; the run was cut short, "
            "rerun it with `tunefleet run SPEC.yaml --overwrite`."
        )
    exploits_path = folder / EXPLOITS_FILE
    return Experiment(
        trials=read_frame(trials_path),
        iterations=read_frame(iterations_path),
        exploits=read_frame(exploits_path) if exploits_path.is_file() else None,
        metadata=read_metadata(trials_path.uri),
        path=folder.local_path or folder.uri,
    )


def load_all(root: str | Path) -> pd.DataFrame:
    """All trials of every experiment folder under a storage root, with an `experiment` column.

    Args:
        root: The storage root (`--storage`), holding `<name>/trials.parquet` folders: a
            local path or a URI.

    Raises:
        AnalysisError: If no experiment folder is there.
        LocationError: If the object store cannot be read; the message says why.
    """
    base = locate(root)
    folders = [base] if (base / TRIALS_FILE).is_file() else []
    if base.is_dir():
        folders += [f for f in base.folders() if (f / TRIALS_FILE).is_file()]
    if not folders:
        why = base.missing() if base.remote and not base.exists() else ""
        cause = f" ({why})" if why and why != "not found" else ""
        raise AnalysisError(f"{base} holds no experiment folders (no */{TRIALS_FILE}){cause}.")
    frames = []
    for folder in folders:
        trials = read_frame(folder / TRIALS_FILE)
        # The folder's name (the files' own `experiment` column keeps the name it ran under).
        trials = trials.drop(columns=["experiment"], errors="ignore")
        trials.insert(0, "experiment", folder.name)
        frames.append(trials)
    return pd.concat(frames, ignore_index=True)
