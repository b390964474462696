"""The `scheduler:` section: which trials go on, pause or stop early.

    scheduler: {name: asha, grace_period: 3, reduction_factor: 3}

Every scheduler is Ray Tune's own; this module holds their typed settings and builds them.
Population-based training is chosen as `search.algorithm: pbt` (it replaces both searcher
and scheduler) and built in `tunefleet.search.algorithms`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from tunefleet.common.sections import Section

__all__ = [
    "SCHEDULERS",
    "AshaSettings",
    "FifoSettings",
    "HyperbandSettings",
    "MedianSettings",
    "SchedulerSettings",
    "build_scheduler",
    "describe_scheduler",
    "resolved_max_t",
]

SCHEDULERS = ("fifo", "asha", "hyperband", "median")

# Progress measures Ray itself records for every result, so every trainable has them.
TimeAttr = Literal["training_iteration", "time_total_s"]


class FifoSettings(Section):
    """Run every trial to its end (Ray's FIFO scheduler)."""

    name: Literal["fifo"] = "fifo"


class AshaSettings(Section):
    """Asynchronous successive halving: stop the worst trials early.

    Attributes:
        time_attr: The result field that measures progress.
        max_t: The most `time_attr` a trial may use; defaults to `stop.<time_attr>`.
        grace_period: No trial is stopped before this much `time_attr`.
        reduction_factor: Only the best 1/reduction_factor of trials go on at each rung.
        brackets: Number of brackets (1 is usual).
    """

    name: Literal["asha"]
    time_attr: TimeAttr = "training_iteration"
    max_t: int | None = Field(default=None, ge=1)
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=4, gt=1)
    brackets: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> AshaSettings:
        if self.max_t is not None and self.grace_period > self.max_t:
            raise ValueError(
                f"scheduler.grace_period: must be <= max_t, but got grace_period="
                f"{self.grace_period}, max_t={self.max_t}."
            )
        return self


class HyperbandSettings(Section):
    """Synchronous Hyperband: brackets of successive halving (trials pause at rungs).

    Attributes:
        time_attr: The result field that measures progress.
        max_t: The most `time_attr` a trial may use; defaults to `stop.<time_attr>`.
        reduction_factor: Halving rate between rungs.
    """

    name: Literal["hyperband"]
    time_attr: TimeAttr = "training_iteration"
    max_t: int | None = Field(default=None, ge=1)
    reduction_factor: float = Field(default=3, gt=1)


class MedianSettings(Section):
    """Median stopping: stop a trial whose best result is below the median of the others'
    running averages at the same point.

    Attributes:
        time_attr: The result field that measures progress.
        grace_period: No trial is stopped before this much `time_attr`.
        min_samples_required: Trials needed at a point before the median is trusted.
    """

    name: Literal["median"]
    time_attr: TimeAttr = "training_iteration"
    grace_period: float = Field(default=3, ge=0)
    min_samples_required: int = Field(default=3, ge=1)


SchedulerSettings = Annotated[
    FifoSettings | AshaSettings | HyperbandSettings | MedianSettings,
    Field(discriminator="name"),
]
AnyScheduler = FifoSettings | AshaSettings | HyperbandSettings | MedianSettings


def resolved_max_t(settings: AshaSettings | HyperbandSettings, stop: dict[str, Any]) -> int | None:
    """`max_t` as given, else the spec's stop on the same attribute, else None."""
    if settings.max_t is not None:
        return settings.max_t
    limit = stop.get(settings.time_attr)
    return int(limit) if limit is not None else None


def build_scheduler(settings: AnyScheduler, *, stop: dict[str, Any]) -> Any:
    """Returns Ray Tune's scheduler for `settings`.

    The metric and mode come from `tune.TuneConfig`, which hands them to the scheduler.

    Args:
        settings: The validated `scheduler:` section.
        stop: The spec's stop criteria, which give `max_t` when it is not set.
    """
    # Ray (and fifo, which subclasses Ray's schedulers) load only when a scheduler is built:
    # a spec is checked without Ray.
    from ray.tune import schedulers

    # Ray's schedulers, without the rescans of finished trials (they import Ray: loaded here).
    from tunefleet.search import trial_order

    if isinstance(settings, FifoSettings):
        return trial_order.FifoScheduler()
    if isinstance(settings, AshaSettings):
        return trial_order.AshaScheduler(
            time_attr=settings.time_attr,
            max_t=resolved_max_t(settings, stop) or 100,
            grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor,
            brackets=settings.brackets,
        )
    if isinstance(settings, HyperbandSettings):
        return schedulers.HyperBandScheduler(
            time_attr=settings.time_attr,
            max_t=resolved_max_t(settings, stop) or 81,
            reduction_factor=settings.reduction_factor,
        )
    return trial_order.MedianStopping(
        time_attr=settings.time_attr,
        grace_period=settings.grace_period,
        min_samples_required=settings.min_samples_required,
    )


def describe_scheduler(settings: AnyScheduler, stop: dict[str, Any]) -> str:
    """A one-line description of the scheduler, for `tunefleet validate`."""
    if isinstance(settings, FifoSettings):
        return "fifo (every trial runs to its stop criteria)"
    if isinstance(settings, AshaSettings):
        return (
            f"asha (time_attr {settings.time_attr}, max_t {resolved_max_t(settings, stop)}, "
            f"grace_period {settings.grace_period}, reduction_factor "
            f"{settings.reduction_factor:g}, brackets {settings.brackets})"
        )
    if isinstance(settings, HyperbandSettings):
        return (
            f"hyperband (time_attr {settings.time_attr}, max_t {resolved_max_t(settings, stop)}, "
            f"reduction_factor {settings.reduction_factor:g})"
        )
    return (
        f"median stopping (time_attr {settings.time_attr}, grace_period "
        f"{settings.grace_period:g}, min_samples_required {settings.min_samples_required})"
    )
