"""The experiment spec: one YAML file, validated completely before Ray starts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    PlainValidator,
    model_validator,
)

from tunefleet.common.sections import Section
from tunefleet.common.suggest import did_you_mean
from tunefleet.experiments.spec.optional_sections import (
    Baseline,
    FinalSettings,
    TrackingSettings,
    check_baseline,
)
from tunefleet.search import (
    FifoSettings,
    SchedulerSettings,
    SearchSettings,
    Space,
    parse_space,
)
from tunefleet.search.combinations import check_objectives, check_search
from tunefleet.trainables.resolve import IMPORT_PATH_PATTERN

__all__ = ["ExperimentSpec", "FailureSettings", "ResourcesSettings", "ResultsSettings"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
RESOURCE_STEP = 0.0001  # Ray's precision for fractional resources


class ResourcesSettings(Section):
    """What one trial reserves.

    Attributes:
        cpu: CPUs per trial, or per worker with `workers` above 1 (also torch's thread count
            in the PyTorch wrapper).
        gpu: GPUs per trial, or per worker (fractions share a GPU).
        workers: Workers a trial trains on, data-parallel (Ray Train, DDP: gloo on CPUs,
            nccl on GPUs); each reserves `cpu` and `gpu`. For a function trainable or
            `TorchTrainable`.
    """

    cpu: float = Field(default=1, gt=0, allow_inf_nan=False)
    gpu: float = Field(default=0, ge=0, allow_inf_nan=False)
    workers: int = Field(default=1, ge=1)

    @property
    def trial_cpu(self) -> float:
        """CPUs one trial reserves, all its workers together."""
        return self.cpu * self.workers

    @property
    def trial_gpu(self) -> float:
        """GPUs one trial reserves, all its workers together."""
        return self.gpu * self.workers

    def describe(self) -> str:
        """`1 CPU, 0 GPU per trial`, or `2 workers x (1 CPU, 0 GPU) per trial`."""
        each = f"{self.cpu:g} CPU, {self.gpu:g} GPU"
        return (
            f"{each} per trial"
            if self.workers == 1
            else f"{self.workers} workers x ({each}) per trial"
        )

    @model_validator(mode="after")
    def _check(self) -> ResourcesSettings:
        for key, value in (("cpu", self.cpu), ("gpu", self.gpu)):
            if 0 < value < RESOURCE_STEP:
                raise ValueError(
                    f"resources.{key}: Ray counts resources in steps of {RESOURCE_STEP:g}, "
                    f"got {value:g}; use at least {RESOURCE_STEP:g}."
                )
        return self


class FailureSettings(Section):
    """What happens when a trial raises.

    Attributes:
        max_failures: Retry a failed trial this many times, from its last checkpoint, before
            recording it as failed (the other trials go on either way).
        fail_fast: Stop the whole experiment at the first failure (for debugging; the
            `--fail-fast` flag sets it).
        keep_checkpoints: Keep only the newest N checkpoints of each trial (default: all,
            as Ray does). Ray saves its experiment state every few seconds; a driver killed
            after a trial's older checkpoints were deleted leaves a state that names a
            deleted checkpoint, and that trial cannot resume. Keep enough to cover a few
            seconds of training, or all.
    """

    max_failures: int = Field(default=0, ge=0)
    fail_fast: bool = False
    keep_checkpoints: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check(self) -> FailureSettings:
        if self.fail_fast and self.max_failures:
            raise ValueError(
                "failure.fail_fast: stopping at the first failure leaves nothing to retry; "
                "set max_failures to 0 or fail_fast to false."
            )
        return self


class ResultsSettings(Section):
    """How the Parquet results are kept.

    Attributes:
        flush_every_s: Seconds between saves of Ray's experiment state, each followed by a
            rewrite of the files, while the run goes on (they are also written when it
            ends, fails or is interrupted). Ray's own default adapts between 10 s and more.
        storage_outage_s: Seconds an object store (`--storage s3://...`) may stay
            unreachable, down or throttling while the run writes its files: the run goes on
            and the writes are retried, holding every result once they succeed. A longer
            outage, or an error that waiting does not cure (a missing bucket, refused
            credentials), stops the run in one line that names the resume command.
    """

    flush_every_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    storage_outage_s: float = Field(default=300.0, gt=0, allow_inf_nan=False)


def _check_metric(value: Any) -> Any:
    names = value if isinstance(value, list) else [value]
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"metric: {name!r} is not a metric name; give the name of a reported metric, "
                "or a list of names (multi-objective)."
            )
    return value


def _check_mode(value: Any) -> Any:
    for mode in value if isinstance(value, list) else [value]:
        if mode not in ("min", "max"):
            hint = did_you_mean(mode, ["min", "max"])
            raise ValueError(f"mode: {mode!r} is not allowed; choose one of min, max{hint}")
    return value


MetricName = Annotated[str, Field(min_length=1)]
Mode = Literal["min", "max"]


def _space(value: Any) -> Space:
    if isinstance(value, Space):
        return value
    return parse_space(value)


class ExperimentSpec(Section):
    """A whole experiment.

    Attributes:
        name: The experiment's folder under the storage root.
        description: Free text, kept in the results' metadata.
        trainable: `package.module:object`: a function `train(config)`, a Trainable class,
            or a tunefleet wrapper such as `TorchTrainable`.
        metric: The reported metric the search optimizes, or a list of two or more
            (multi-objective: Optuna's nsga2 or tpe sampler, scheduler fifo; the results mark
            the Pareto-optimal trials, and the progress line, `show` and `best` rank by the
            first metric).
        mode: `min` or `max`, or a list with one per metric.
        space: Hyperparameters (see `tunefleet.search.space`).
        search: The searcher and trial budget.
        scheduler: `fifo` or an early-stopping scheduler.
        resources: CPUs and GPUs per trial.
        stop: Stop a trial when a reported value reaches a bound, e.g.
            `{training_iteration: 20}`.
        failure: Retries of failed trials.
        results: How the Parquet results are kept.
        final: Evaluate the best configs on the held-out test split after the search.
        baseline: A reference config run first, marked in the results.
        tracking: MLflow and TensorBoard logging.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)  # and Section's

    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    description: str | None = None
    trainable: str = Field(pattern=IMPORT_PATH_PATTERN)
    metric: Annotated[MetricName | list[MetricName], BeforeValidator(_check_metric)]
    mode: Annotated[Mode | list[Mode], BeforeValidator(_check_mode)]
    space: Annotated[Space, PlainValidator(_space)] = Field(default_factory=lambda: Space({}))
    search: SearchSettings = Field(default_factory=SearchSettings)
    scheduler: SchedulerSettings = Field(default_factory=FifoSettings)
    resources: ResourcesSettings = Field(default_factory=ResourcesSettings)
    stop: dict[str, FiniteFloat] = Field(default_factory=dict)
    failure: FailureSettings = Field(default_factory=FailureSettings)
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    final: FinalSettings | None = None
    baseline: Baseline | None = None
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)

    @model_validator(mode="after")
    def _check_combination(self) -> ExperimentSpec:
        check_objectives(self.search, self.scheduler, self.metric, self.mode)
        check_search(self.search, self.scheduler, self.space, self.stop)
        check_baseline(self.baseline, self.space.searched)
        return self

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every objective's metric (one unless multi-objective)."""
        return (self.metric,) if isinstance(self.metric, str) else tuple(self.metric)

    @property
    def modes(self) -> tuple[str, ...]:
        """The mode of each metric in `metrics`."""
        return (self.mode,) if isinstance(self.mode, str) else tuple(self.mode)

    @property
    def multi_objective(self) -> bool:
        """Two or more metrics, searched by Optuna; the Pareto front is marked in results."""
        return len(self.metrics) > 1

    @property
    def target_metric(self) -> str:
        """The first metric: the one the progress line, `best` and `show` rank by."""
        return self.metrics[0]

    @property
    def target_mode(self) -> str:
        """The mode of `target_metric`."""
        return self.modes[0]

    @property
    def trial_count(self) -> int:
        """Trials the search runs: `num_samples` x `repeat` x the grid's points."""
        return self.search.trials * self.search.repeat * self.space.grid_size()
