"""Runs a plan through Ray Tune's `Tuner` and leaves Parquet results behind."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import yaml
from ray import tune
from ray.tune.search import ConcurrencyLimiter, Searcher

from tunefleet.cluster import connect
from tunefleet.cluster.capacity import AutoscalerLimits
from tunefleet.common import startup
from tunefleet.common.locations import LocationError, locate
from tunefleet.common.ray_compat import unused_tracking_hidden
from tunefleet.common.timeline import mark
from tunefleet.experiments.results.files import SPEC_FILE
from tunefleet.experiments.results.parquet_io import write_text_atomic
from tunefleet.experiments.results.recorder import ResultsRecorder
from tunefleet.experiments.run.baseline import run_baseline
from tunefleet.experiments.run.elastic import SlotWatch
from tunefleet.experiments.run.experiment_folder import ExperimentFolder, RunError
from tunefleet.experiments.run.final_evaluation import run_final
from tunefleet.experiments.run.finished_trials import LeanFinishedTrials
from tunefleet.experiments.run.progress import ProgressPrinter
from tunefleet.experiments.run.tracking import tracking_callbacks
from tunefleet.experiments.run.tune_setup import (
    moved_cap,
    quiet_reporter,
    quiet_tune,
    reuse_actors,
    trial_dirname,
    tune_trainable,
)
from tunefleet.experiments.spec.plan import Plan
from tunefleet.experiments.spec.slots import TrialSlots, trial_slots
from tunefleet.search.algorithms import build_search, takes_earlier_results, uses_searcher
from tunefleet.search.budget import build_stop
from tunefleet.search.warm_start import WarmStart

__all__ = [
    "GIVEN_AS_OBJECT",
    "Extension",
    "RunError",
    "RunOptions",
    "RunSummary",
    "build_tuner",
    "experiment_dir",
    "fit_tuner",
    "run_callbacks",
    "run_plan",
    "storage_root",
]


@dataclass(frozen=True)
class RunOptions:
    """How and where to run.

    Attributes:
        storage: Results root: a local folder or a pyarrow URI (`s3://bucket/path`).
        name: Overrides the spec's name (the experiment's folder under `storage`).
        address: None for an embedded local Ray; `auto` or `HOST:PORT` for a cluster.
        verbose: Show Ray's own progress tables and worker logs.
        overwrite: Replace an existing experiment folder of the same name.
        notebook: Show the progress as one line a Jupyter notebook updates in place.
    """

    storage: str = "results"
    name: str | None = None
    address: str | None = None
    verbose: bool = False
    overwrite: bool = False
    notebook: bool = False


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
        invalid_metrics: Finished trials whose target metric was NaN, infinite or never
            reported (counted as failed by the searcher), and why.
    """

    experiment_dir: str
    statuses: dict[str, int] = field(default_factory=dict)
    best_trial: str | None = None
    best_value: float | None = None
    best_config: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    invalid_metrics: dict[str, str] = field(default_factory=dict)

    @property
    def trials(self) -> int:
        return sum(self.statuses.values())

    @property
    def all_failed(self) -> bool:
        """Every trial errored or ended without a usable target value (a metric typo)."""
        failed = self.statuses.get("ERROR", 0) + len(self.invalid_metrics)
        return self.trials > 0 and failed >= self.trials

    @property
    def unfinished(self) -> int:
        """Trials neither finished nor failed (the run was interrupted)."""
        return sum(n for s, n in self.statuses.items() if s not in ("TERMINATED", "ERROR"))


def storage_root(storage: str) -> str:
    """An absolute local path, or the URI (no trailing `/`).

    Raises:
        RunError: If the URI carries credentials (`s3://KEY:SECRET@bucket`), which would be
            printed and saved with the results, or pyarrow cannot open its scheme.
    """
    try:
        return locate(storage).uri
    except LocationError as exc:
        raise RunError(f"--storage: {exc}") from None


def experiment_dir(plan: Plan, options: RunOptions) -> str:
    """`<storage>/<name>` for this run."""
    return f"{storage_root(options.storage)}/{options.name or plan.spec.name}"


def build_tuner(
    plan: Plan,
    exp_dir: str,
    callbacks: list[Any],
    *,
    verbose: bool,
    slots: TrialSlots,
    extend: Extension | None = None,
) -> Any:
    """The `tune.Tuner` for a plan (Ray must be initialized).

    Args:
        plan: What to run.
        exp_dir: `<storage>/<name>`.
        callbacks: The recorder and progress printer; a `SlotWatch` among them moves the
            searcher's cap while the run lasts.
        verbose: Ray's own tables and logs.
        slots: How many trials run at once now (a searcher starts capped at `slots.cap`).
        extend: Run `extend.trials` more trials, the searcher warm-started with earlier results.
    """
    spec = plan.spec
    settings = spec.search
    if extend is not None:
        # A fresh seed stream, so the new trials do not repeat the first ones' suggestions.
        seed = None if settings.seed is None else settings.seed + extend.offset
        settings = settings.model_copy(update={"seed": seed, "points_to_evaluate": []})
    storage, _, name = exp_dir.rpartition("/")
    search = build_search(
        settings,
        spec.scheduler,
        space=spec.space,
        stop=spec.stop,
        metric=spec.metric,
        mode=spec.mode,
        parallel=slots.cap,
    )
    search_alg = search.search_alg
    # Not warm-started: multi-objective searches (earlier results carry one value each) and
    # searchers that cannot be told earlier results (`takes_earlier_results`).
    warm = not spec.multi_objective and takes_earlier_results(settings, spec.space)
    if extend is not None and extend.points and warm:
        search_alg = WarmStart(search_alg, extend.points)
    num_samples = extend.trials if extend is not None else settings.trials * settings.repeat
    if isinstance(search_alg, Searcher):
        # Ray's ConcurrencyLimiter (outermost: around Repeater, it counts trials, not
        # configs), without which Ray runs a Searcher one trial at a time; built here so
        # that the SlotWatch can move its cap. The variant generator (random, grid, PBT)
        # queues every trial and carries `max_concurrent` itself (moved too for
        # data-parallel trials: `moved_cap`).
        search_alg = ConcurrencyLimiter(search_alg, max_concurrent=slots.cap)
    cap = moved_cap(search_alg, plan)
    if cap is not None:
        for callback in callbacks:
            if isinstance(callback, SlotWatch):
                callback.attach(cap)
    keep = spec.failure.keep_checkpoints
    if settings.population_based and keep is not None:
        keep = max(keep, 3)  # PBT restores trials from others' recent checkpoints
    return tune.Tuner(
        tune_trainable(plan),
        param_space=search.param_space,
        tune_config=tune.TuneConfig(
            # Ray's TuneConfig takes one metric; several go to the Optuna searcher only.
            metric=None if spec.multi_objective else spec.target_metric,
            mode=None if spec.multi_objective else spec.target_mode,
            search_alg=search_alg,
            scheduler=search.scheduler,
            num_samples=num_samples,
            time_budget_s=settings.time_budget_s,
            reuse_actors=reuse_actors(plan),
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            stop=build_stop(
                spec.stop,
                cpu_hours=settings.budget_cpu_hours,
                gpu_hours=settings.budget_gpu_hours,
                cpus=spec.resources.trial_cpu,
                gpus=spec.resources.trial_gpu,
            ),
            callbacks=callbacks,
            verbose=2 if verbose else 0,
            progress_reporter=quiet_reporter(verbose),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=keep),
            failure_config=tune.FailureConfig(
                max_failures=spec.failure.max_failures, fail_fast=spec.failure.fail_fast
            ),
        ),
    )


@dataclass(frozen=True)
class Extension:
    """More trials for a finished experiment (`tunefleet resume --extend N`).

    Attributes:
        trials: How many new trials.
        points: Earlier configs and final metric values, fed to the searcher first.
        offset: Added to the searcher's seed (the number of earlier trials).
    """

    trials: int
    points: list[Any]
    offset: int


def run_callbacks(
    plan: Plan,
    exp_dir: str,
    options: RunOptions,
    total: int,
    slots: TrialSlots,
    started_at: float | None = None,
    autoscaler: AutoscalerLimits | None = None,
) -> tuple[ResultsRecorder, list[Any]]:
    """The results recorder, and every callback of a run: the recorder, the progress line
    (unless verbose), the slot watch, the spec's trackers and the bookkeeping trim.

    Args:
        plan: What runs.
        exp_dir: `<storage>/<name>`.
        options: How it runs.
        total: Trials the progress line counts towards.
        slots: The trials at once the run starts with.
        started_at: Unix time the command started.
        autoscaler: The cluster's autoscaler limits, if it has one.
    """
    spec = plan.spec
    changes: list[dict[str, Any]] = []  # the slot watch appends; the metadata holds it
    recorder = ResultsRecorder(
        exp_dir,
        metric=spec.target_metric,
        mode=spec.target_mode,
        info={
            "experiment": exp_dir.rpartition("/")[2],
            "spec": plan.raw,
            "trials_at_once": slots.to_dict(),
            "trials_at_once_changes": changes,
            **({"trainable_given_as_object": True} if plan.given_as_object else {}),
        },
        population_based=spec.search.population_based,
        objectives=list(zip(spec.metrics, spec.modes, strict=True)),
        started_at=started_at,
    )
    progress = ProgressPrinter(
        metric=spec.target_metric,
        mode=spec.target_mode,
        searched=spec.space.searched,
        total=total,
        at_once=slots.describe(),
        notebook=options.notebook,
    )
    watch = SlotWatch(
        spec,
        None,
        slots,
        changes=changes,
        on_change=lambda now: progress.cluster_changed(now.cap, now.nodes, now.describe()),
        limits=autoscaler,
    )
    tracking = tracking_callbacks(spec.tracking, experiment=spec.name)
    shown = [] if options.verbose else [progress]
    return recorder, [recorder, *shown, watch, *tracking, LeanFinishedTrials()]


def fit_tuner(
    tuner: Any,
    recorder: ResultsRecorder,
    plan: Plan,
    options: RunOptions,
    started: float,
    pending_trials: int | None = None,
) -> RunSummary:
    """Runs `tuner.fit()` with Ray's output quieted and sums up what `recorder` saw.

    Args:
        tuner: The `tune.Tuner` to run.
        recorder: The run's results recorder (one of the tuner's callbacks).
        plan: What runs.
        options: How it runs.
        started: `time.monotonic()` when the command started.
    """
    exp_dir = recorder.experiment_dir
    used = ["mlflow"] if plan.spec.tracking.mlflow is not None else []
    try:
        with (
            quiet_tune(options.verbose, plan.spec.results.flush_every_s, pending_trials),
            unused_tracking_hidden(used),  # Ray's telemetry would import them (seconds)
        ):
            mark("fit_started")
            # The collector, paused by the command's entry point while it imported the
            # trainable and started Ray (`tunefleet.common.startup`), runs for the fit.
            startup.resume()
            tuner.fit()
            mark("fit_done")
    finally:
        if recorder.needs_flush:  # Ray's end of the experiment wrote them, unless it raised
            recorder.flush()
        mark("results_written")
    best = recorder.best_trial()
    return RunSummary(
        experiment_dir=exp_dir,
        statuses=recorder.statuses(),
        best_trial=best[0] if best else None,
        best_value=best[1] if best else None,
        best_config=best[2] if best else {},
        wall_s=time.monotonic() - started,
        invalid_metrics=recorder.invalid_metrics(),
    )


def run_plan(plan: Plan, options: RunOptions) -> RunSummary:
    """Runs the experiment and writes `trials.parquet` and `iterations.parquet`.

    The resolved spec is saved as `spec.yaml` beside the results, for `tunefleet resume`.
    A run that fails before its first trial starts (Ray cannot be reached, say) leaves the
    results folder as it found it (see `tunefleet.experiments.run.experiment_folder`).

    Raises:
        RunError: If the results folder is taken (and `overwrite` is off).
        ClusterError: If Ray cannot be started or reached.
    """
    started, started_at = time.monotonic(), time.time()
    spec = plan.spec
    exp_dir = experiment_dir(plan, options)
    folder = ExperimentFolder(exp_dir, overwrite=options.overwrite)  # checked before Ray starts
    with connect(options.address, verbose=options.verbose) as connection, folder.claimed():
        slots = trial_slots(connection, spec)  # the cluster as it is at start
        recorder, callbacks = run_callbacks(
            plan, exp_dir, options, spec.trial_count, slots, started_at, connection.autoscaler
        )
        write_spec_file(exp_dir, plan.raw, given_as_object=plan.given_as_object)
        if spec.baseline is not None:
            run_baseline(plan, exp_dir, verbose=options.verbose)  # before the search
        callbacks = [*callbacks, folder.on_first_trial()]
        tuner = build_tuner(plan, exp_dir, callbacks, verbose=options.verbose, slots=slots)
        summary = fit_tuner(tuner, recorder, plan, options, started, pending_trials(plan, slots))
        if spec.final is not None and summary.best_trial is not None and not summary.unfinished:
            run_final(plan, exp_dir)  # the best configs on the held-out test split
        return summary


def pending_trials(plan: Plan, slots: TrialSlots) -> int | None:
    """Trials a searcher may have waiting to start (Ray's `TUNE_MAX_PENDING_TRIALS_PG`, read
    once when the run starts): as many as its cap may ever reach (`search.max_concurrent`,
    else every trial), since the cap follows the cluster and the ConcurrencyLimiter holds
    the rest back; None (Ray's own choice) for the variant generator."""
    if not uses_searcher(plan.spec.search, plan.spec.space):
        return None
    return max(slots.cap, plan.spec.search.max_concurrent or plan.spec.trial_count)


#: The first line of a `spec.yaml` whose trainable was handed to `tunefleet.run` as an object.
GIVEN_AS_OBJECT = (
    "# trainable: given to tunefleet.run() as an object; resume with "
    "tunefleet.resume(path, trainable=...)"
)


def write_spec_file(exp_dir: str, raw: dict[str, Any], *, given_as_object: bool = False) -> None:
    """Saves the spec as run (overrides applied) in the experiment folder; a first comment
    line says when its trainable was given as an object (`GIVEN_AS_OBJECT`)."""
    text = yaml.safe_dump(raw, sort_keys=False)
    if given_as_object:
        text = f"{GIVEN_AS_OBJECT}\n{text}"
    write_text_atomic(f"{exp_dir}/{SPEC_FILE}", text)
