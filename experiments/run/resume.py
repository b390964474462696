"""`tunefleet resume`: finish an interrupted experiment, or add trials to a finished one.

Restoring unpickles Ray's experiment state (`tuner.pkl`, searcher state): only resume
experiment folders you trust, as you would only run code you trust (the command's help says
so, in the words `tunefleet.experiments.results.pickled_state` gives `export` too).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ray import tune

from tunefleet.cluster import connect
from tunefleet.cluster.capacity import AutoscalerLimits
from tunefleet.common.locations import locate
from tunefleet.common.nesting import set_path
from tunefleet.common.ray_compat import restored_run_config, restored_search_alg
from tunefleet.experiments.results.files import SPEC_FILE, TRIALS_FILE
from tunefleet.experiments.results.parquet_io import read_rows
from tunefleet.experiments.run.elastic import SlotWatch
from tunefleet.experiments.run.runner import (
    GIVEN_AS_OBJECT,
    Extension,
    RunError,
    RunOptions,
    RunSummary,
    build_tuner,
    fit_tuner,
    pending_trials,
    run_callbacks,
    storage_root,
)
from tunefleet.experiments.run.tune_setup import moved_cap, quiet_reporter, tune_trainable
from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.experiments.spec.loading import SpecError, load_spec
from tunefleet.experiments.spec.plan import Plan, make_plan
from tunefleet.experiments.spec.slots import TrialSlots, trial_slots
from tunefleet.search.algorithms import build_search, takes_earlier_results
from tunefleet.search.warm_start import EvaluatedPoint

__all__ = ["earlier_points", "resume_experiment"]


def resume_experiment(
    path: str, options: RunOptions, *, extend: int | None = None, trainable: Any = None
) -> tuple[Plan, RunSummary]:
    """Continues the experiment in `path` (`<storage>/<name>`).

    Without `extend`, Ray restores the run: finished trials stay as they are, unfinished
    ones continue from their last checkpoints, and the searcher keeps everything it learned.
    With `extend=N`, N new trials run after the finished ones, the searcher first told every
    earlier config and result.

    Trials at once: counted anew from the cluster as it is, and moved as it changes (Ray
    restores the searcher's ConcurrencyLimiter, whose cap the slot watch moves again).

    `trainable` (a function, class or wrapper) is used in place of importing the spec's
    `trainable:`; a run whose trainable was given to `tunefleet.run` as an object needs it.

    Raises:
        RunError: If `path` is not a tunefleet experiment that can be resumed as asked, or
            its trainable was given as an object and `trainable` is None.
    """
    started = time.monotonic()
    exp_dir = storage_root(path)
    try:
        spec, raw = load_spec(f"{exp_dir}/{SPEC_FILE}")
    except SpecError as exc:
        if "no such file" in str(exc):
            location = locate(exp_dir)
            why = location.missing() if location.remote else "not found"
            cause = f" ({why})" if why != "not found" else ""
            raise RunError(
                f"{exp_dir}: no {SPEC_FILE} here{cause}; give the folder `tunefleet run` "
                "wrote (<storage>/<name>)."
            ) from None
        raise
    given_as_object = _given_as_object(exp_dir)
    if given_as_object and trainable is None:
        raise RunError(
            f"{exp_dir}: its trainable '{spec.trainable}' was given to tunefleet.run() as an "
            f"object; resume it from Python with tunefleet.resume({exp_dir!r}, trainable=...)."
        )
    plan = make_plan(spec, raw, trainable=trainable, given_as_object=given_as_object)
    with connect(options.address, verbose=options.verbose) as connection:
        slots = trial_slots(connection, spec)
        if extend is not None:
            if spec.search.population_based:
                raise RunError(
                    f"--extend: a {spec.search.algorithm} population cannot grow after the "
                    "fact; start a new experiment with a larger search.num_samples."
                )
            points = earlier_points(exp_dir, plan)
            told = not spec.multi_objective and takes_earlier_results(spec.search, spec.space)
            if points and not told and spec.search.algorithm not in ("random", "grid"):
                print(f"warning: {_not_told(spec, len(points))}", file=sys.stderr)
            recorder, callbacks = run_callbacks(
                plan, exp_dir, options, extend, slots, autoscaler=connection.autoscaler
            )
            extension = Extension(trials=extend, points=points, offset=len(points))
            tuner = build_tuner(
                plan, exp_dir, callbacks, verbose=options.verbose, slots=slots, extend=extension
            )
        else:
            tuner, recorder = _restore(plan, exp_dir, options, slots, connection.autoscaler)
        return plan, fit_tuner(tuner, recorder, plan, options, started, pending_trials(plan, slots))


def _given_as_object(exp_dir: str) -> bool:
    """Whether the run's trainable was given as an object (`spec.yaml`'s first line)."""
    text = (locate(exp_dir) / SPEC_FILE).read_bytes().decode("utf-8", errors="replace")
    return text.startswith(GIVEN_AS_OBJECT)


def _not_told(spec: ExperimentSpec, earlier: int) -> str:
    """Why the searcher starts without the earlier results, in one line."""
    search = spec.search
    if spec.multi_objective:
        why = "a multi-objective search"
    elif spec.space.conditional:
        why = "a conditional space (Optuna's define-by-run)"
    elif search.repeat > 1:
        why = "repeated configs (Ray's Repeater)"
    else:
        why = f"{search.algorithm} (Ray Tune has no way to pass them to it)"
    return (
        f"--extend: the searcher is not told the {earlier} earlier results with {why}; "
        "the new trials search afresh, with a new seed."
    )


def _restore(
    plan: Plan,
    exp_dir: str,
    options: RunOptions,
    slots: TrialSlots,
    autoscaler: AutoscalerLimits | None,
) -> tuple[Any, Any]:
    spec = plan.spec
    if not tune.Tuner.can_restore(exp_dir):
        raise RunError(f"{exp_dir}: Ray saved no experiment state here; nothing to resume.")
    search = build_search(
        spec.search,
        spec.scheduler,
        space=spec.space,
        stop=spec.stop,
        metric=spec.metric,
        mode=spec.mode,
    )
    tuner = tune.Tuner.restore(
        exp_dir,
        trainable=tune_trainable(plan),
        resume_unfinished=True,
        resume_errored=False,
        restart_errored=False,
        param_space=search.param_space,
    )
    recorder, callbacks = run_callbacks(
        plan, exp_dir, options, spec.trial_count, slots, autoscaler=autoscaler
    )
    cap = moved_cap(restored_search_alg(tuner), plan)
    if cap is not None:  # None where Ray's resources cap the trials, or no limiter was saved
        for callback in callbacks:
            if isinstance(callback, SlotWatch):
                callback.attach(cap)
    # Ray restores the callbacks pickled at the start; use fresh ones (which pick up the
    # Parquet files written so far) so that this process can read what they record.
    run_config = restored_run_config(tuner)
    if run_config is None:
        raise RunError("resume runs the driver in this process; Ray Client is not supported.")
    run_config.callbacks = callbacks
    run_config.verbose = 2 if options.verbose else 0
    run_config.progress_reporter = quiet_reporter(options.verbose)
    return tuner, recorder


def earlier_points(exp_dir: str, plan: Plan) -> list[EvaluatedPoint]:
    """Every earlier trial's searched config (nested) and last value of the target metric."""
    searched = plan.spec.space.searched
    points = []
    for row in read_rows(f"{exp_dir}/{TRIALS_FILE}"):
        config: dict[str, Any] = {}
        for path in searched:
            if f"config/{path}" not in row:
                continue
            set_path(config, path, row[f"config/{path}"])
        value = row.get(plan.spec.target_metric)
        # A trial whose target ended NaN, infinite or missing was a failure to its searcher.
        failed = row.get("status") == "ERROR" or value is None or bool(row.get("invalid_metric"))
        points.append(EvaluatedPoint(config, None if value is None else float(value), failed))
    return points
