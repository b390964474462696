"""Runs a plan through Ray Tune's `Tuner` and leaves Parquet results behind."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunefleet.cluster import connect
from tunefleet.experiments.plan import Plan
from tunefleet.experiments.progress import ProgressPrinter
from tunefleet.experiments.results import ResultsRecorder

__all__ = ["RunError", "RunOptions", "RunSummary", "experiment_dir", "run_plan"]


class RunError(ValueError):
    """The run cannot start as asked (e.g. its results folder is taken)."""


@dataclass(frozen=True)
class RunOptions:
    """How and where to run.

    Attributes:
        storage: Results root: a local folder or a pyarrow URI (`s3://bucket/path`).
        name: Overrides the spec's name (the experiment's folder under `storage`).
        address: None for an embedded local Ray; `auto` or `HOST:PORT` for a cluster.
        verbose: Show Ray's own progress tables and worker logs.
        overwrite: Replace an existing experiment folder of the same name.
    """

    storage: str = "results"
    name: str | None = None
    address: str | None = None
    verbose: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class RunSummary:
    """What a finished run reports.

    Attributes:
        experiment_dir: Where the results are.
        statuses: Trial counts by Ray status (`TERMINATED`, `ERROR`, ...).
        best_trial: The trial with the best value of the target metric.
        best_value: That value.
        best_config: That trial's config.
        wall_s: Seconds from start to end, Ray's start included.
    """

    experiment_dir: str
    statuses: dict[str, int] = field(default_factory=dict)
    best_trial: str | None = None
    best_value: float | None = None
    best_config: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def trials(self) -> int:
        return sum(self.statuses.values())

    @property
    def all_failed(self) -> bool:
        return self.trials > 0 and self.statuses.get("ERROR", 0) == self.trials


def storage_root(storage: str) -> str:
    """An absolute local path, or the URI unchanged."""
    if "://" in storage and not storage.startswith("file://"):
        return storage.rstrip("/")
    return str(Path(storage.removeprefix("file://")).expanduser().resolve())


def experiment_dir(plan: Plan, options: RunOptions) -> str:
    """`<storage>/<name>` for this run."""
    return f"{storage_root(options.storage)}/{options.name or plan.spec.name}"


def _claim_directory(path: str, overwrite: bool) -> None:
    if "://" in path:
        return  # object stores: Ray and the results writer create what they need
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        if not overwrite:
            raise RunError(
                f"{target} already holds an experiment; pass --overwrite to replace it, or "
                "--name NEW to keep both."
            )
        shutil.rmtree(target)


@contextmanager
def _quiet_tune(verbose: bool) -> Iterator[None]:
    """Turns off what tunefleet replaces: Ray's per-trial CSV/JSON/TensorBoard loggers (the
    Parquet files hold the same data) and, unless verbose, Ray's tables and log lines."""
    env = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    if not verbose:
        env["RAY_AIR_NEW_OUTPUT"] = "0"
    saved_env = {k: os.environ.get(k) for k in env}
    names = ["ray.tune", "ray.train", "ray.air"]
    if "optuna" in sys.modules:  # configure optuna's own handler before it logs
        sys.modules["optuna"].logging.get_verbosity()
        names.append("optuna")
    loggers = [logging.getLogger(n) for n in names]
    saved_levels = [lg.level for lg in loggers]
    os.environ.update(env)
    if not verbose:
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for lg, level in zip(loggers, saved_levels, strict=True):
            lg.setLevel(level)


def trial_dirname(trial: Any) -> str:
    """`trial_<id>`: short folder names instead of Ray's config-laden ones."""
    return f"trial_{trial.trial_id}"


def build_tuner(plan: Plan, exp_dir: str, callbacks: list[Any], *, verbose: bool) -> Any:
    """The `tune.Tuner` for a plan (Ray must be initialized)."""
    from ray import tune

    from tunefleet.search.algorithms import build_search

    spec = plan.spec
    obj = plan.trainable
    trainable = obj.to_tune() if hasattr(obj, "to_tune") else obj
    trainable = tune.with_resources(
        trainable, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    )
    storage, _, name = exp_dir.rpartition("/")
    search = build_search(spec.search, spec.scheduler, space=spec.space, stop=spec.stop)
    # PBT restores trials from others' checkpoints: keep a few more of them.
    keep = 4 if spec.search.population_based else 2
    return tune.Tuner(
        trainable,
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=search.search_alg,
            scheduler=search.scheduler,
            num_samples=spec.search.trials * spec.search.repeat,
            max_concurrent_trials=spec.search.max_concurrent,
            time_budget_s=spec.search.time_budget_s,
            # One worker process serves many trials: small trials would otherwise spend
            # about a second each starting a process and re-importing torch.
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            stop=dict(spec.stop) or None,
            callbacks=callbacks,
            verbose=2 if verbose else 0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=keep),
            failure_config=tune.FailureConfig(
                max_failures=spec.failure.max_failures, fail_fast=spec.failure.fail_fast
            ),
        ),
    )


def run_plan(plan: Plan, options: RunOptions) -> RunSummary:
    """Runs the experiment and writes `trials.parquet` and `iterations.parquet`.

    Raises:
        RunError: If the results folder is taken (and `overwrite` is off).
        ClusterError: If Ray cannot be started or reached.
    """
    started = time.monotonic()
    spec = plan.spec
    exp_dir = experiment_dir(plan, options)
    _claim_directory(exp_dir, options.overwrite)
    recorder = ResultsRecorder(
        exp_dir,
        metric=spec.metric,
        mode=spec.mode,
        info={"experiment": exp_dir.rpartition("/")[2], "spec": plan.raw},
        population_based=spec.search.population_based,
    )
    progress = ProgressPrinter(
        metric=spec.metric,
        mode=spec.mode,
        searched=spec.space.searched,
        total=spec.search.trials * spec.search.repeat * spec.space.grid_size(),
    )
    callbacks: list[Any] = [recorder] if options.verbose else [recorder, progress]
    with connect(options.address, verbose=options.verbose):
        tuner = build_tuner(plan, exp_dir, callbacks, verbose=options.verbose)
        try:
            with _quiet_tune(options.verbose):
                tuner.fit()
        finally:
            recorder.flush()
    statuses = Counter(str(t.status) for t in recorder.trials)
    best = recorder.best_trial()
    return RunSummary(
        experiment_dir=exp_dir,
        statuses=dict(statuses),
        best_trial=best[0] if best else None,
        best_value=best[1] if best else None,
        best_config=best[2] if best else {},
        wall_s=time.monotonic() - started,
    )
