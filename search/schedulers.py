"""Builds the Ray Tune trial scheduler named by a spec's `scheduler:` section."""

from __future__ import annotations

from typing import Any

from tunefleet.search.settings import AshaSettings, FifoSettings

__all__ = ["build_scheduler", "describe_scheduler", "resolved_max_t"]


def resolved_max_t(settings: AshaSettings, stop: dict[str, Any]) -> int:
    """ASHA's `max_t`: given, else the spec's stop on the same attribute, else Ray's 100."""
    if settings.max_t is not None:
        return settings.max_t
    limit = stop.get(settings.time_attr)
    return int(limit) if limit is not None else 100


def build_scheduler(settings: FifoSettings | AshaSettings, *, stop: dict[str, Any]) -> Any:
    """Returns Ray Tune's scheduler for `settings`.

    The metric and mode come from `tune.TuneConfig`, which hands them to the scheduler.

    Args:
        settings: The validated `scheduler:` section.
        stop: The spec's stop criteria, which give ASHA's default `max_t`.
    """
    if isinstance(settings, FifoSettings):
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=settings.time_attr,
        max_t=resolved_max_t(settings, stop),
        grace_period=settings.grace_period,
        reduction_factor=settings.reduction_factor,
        brackets=settings.brackets,
    )


def describe_scheduler(settings: FifoSettings | AshaSettings, stop: dict[str, Any]) -> str:
    """A one-line description of the scheduler, for `tunefleet validate`."""
    if isinstance(settings, FifoSettings):
        return "fifo (every trial runs to its stop criteria)"
    return (
        f"asha (time_attr {settings.time_attr}, max_t {resolved_max_t(settings, stop)}, "
        f"grace_period {settings.grace_period}, reduction_factor {settings.reduction_factor:g}, "
        f"brackets {settings.brackets})"
    )
