"""What every Ray Tune run of tunefleet shares (the search, the baseline, a resumed run):
the trainable with its resources, short trial folder names, and Ray's own output turned off
where tunefleet replaces it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray import tune
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

from tunefleet.common.ray_compat import VariantCap
from tunefleet.experiments.spec.plan import Plan
from tunefleet.trainables.data_parallel import DRIVER_RESOURCES, Gang, gang_trainable

__all__ = [
    "moved_cap",
    "quiet_reporter",
    "quiet_tune",
    "reuse_actors",
    "trial_dirname",
    "tune_trainable",
]


@contextmanager
def quiet_tune(
    verbose: bool, save_every_s: float, pending_trials: int | None = None
) -> Iterator[None]:
    """Turns off what tunefleet replaces: Ray's per-trial CSV/JSON/TensorBoard loggers (the
    Parquet files hold the same data) and, unless verbose, Ray's tables and log lines. Ray
    saves its experiment state every `save_every_s` seconds; the Parquet files follow.
    A result without the target metric does not stop the experiment (Ray's strict check
    would): the trial is recorded as unusable (`invalid_metric`) and its searcher told
    it failed (`tunefleet.search.searcher_wrappers.FiniteTarget`).

    `pending_trials` (for a `Searcher`: the trials allowed at once) goes to Ray's documented
    `TUNE_MAX_PENDING_TRIALS_PG`, unless the environment sets it: without it Ray lets a
    searcher have one trial waiting to start, so trials start one by one; Ray 2.60 reads
    the cap from the searcher's ConcurrencyLimiter, but Ray 2.50 does not.

    SIGTERM (`ray job stop`, a batch scheduler, `kill`) stops the run as Ctrl-C does: Tune
    saves its experiment state before it exits, so `tunefleet resume` knows every trial that
    finished (a state saved seconds earlier would miss the last ones, and the resumed search
    would run trials in their place)."""
    env = {
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
        "TUNE_GLOBAL_CHECKPOINT_S": str(save_every_s),
        "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    }
    if pending_trials is not None and "TUNE_MAX_PENDING_TRIALS_PG" not in os.environ:
        env["TUNE_MAX_PENDING_TRIALS_PG"] = str(pending_trials)
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
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for lg, level in zip(loggers, saved_levels, strict=True):
            lg.setLevel(level)


def quiet_reporter(verbose: bool) -> Any:
    """Ray Tune's progress reporter for a run: None (Ray's choice) when verbose, else its
    plain-text reporter, which prints nothing at verbosity 0. In a notebook Ray would
    choose its HTML reporter, which adds an empty output and clears the cell's earlier
    ones (tunefleet's warnings and status line) even when it reports nothing."""
    return None if verbose else tune.CLIReporter()


def trial_dirname(trial: Any) -> str:
    """`trial_<id>`: short folder names instead of Ray's config-laden ones."""
    return f"trial_{trial.trial_id}"


def tune_trainable(plan: Plan) -> Any:
    """The plan's trainable as Ray Tune runs it, reserving the spec's resources per trial;
    with `resources.workers` above 1, each trial runs it on a gang of Ray Train workers,
    which reserve the resources (`tunefleet.trainables.data_parallel`)."""
    trainable = plan.trainable.to_tune()
    resources = plan.spec.resources
    if resources.workers > 1:
        gang = Gang(workers=resources.workers, cpu=resources.cpu, gpu=resources.gpu)
        return tune.with_resources(gang_trainable(trainable, gang), DRIVER_RESOURCES)
    return tune.with_resources(trainable, {"cpu": resources.cpu, "gpu": resources.gpu})


def reuse_actors(plan: Plan) -> bool:
    """Whether a trial's worker process serves the next trial: yes (small trials would
    otherwise spend about a second each starting a process and re-importing torch), but
    not for data-parallel trials: a trial Tune stops early (ASHA) is ended by ending its
    process, which takes its gang of workers with it; a reused process would keep them."""
    return plan.spec.resources.workers == 1


def moved_cap(search_alg: Any, plan: Plan) -> Any | None:
    """What caps the trials at once, for the slot watch to move; None where Ray's resources
    do: a searcher's `ConcurrencyLimiter`, or, for data-parallel trials, the random, grid
    or PBT generator itself: such a trial reserves nothing (its gang does, through Ray
    Train), so without a cap every queued trial would start and wait there for a gang."""
    if isinstance(search_alg, ConcurrencyLimiter):
        return search_alg
    if plan.spec.resources.workers > 1 and isinstance(search_alg, BasicVariantGenerator):
        return VariantCap(search_alg)
    return None


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM handled as SIGINT, which Tune turns into a graceful stop."""
    signal.raise_signal(signal.SIGINT)
