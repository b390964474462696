"""A total trial-time budget: stop the whole search when trials have used N CPU- or GPU-hours.

`search.budget_cpu_hours` (and `budget_gpu_hours`) count, over every trial, the trial's
`time_total_s` (Ray's own running time of the trial) times the CPUs (GPUs) it reserves. When
the sum reaches the budget, Ray Tune's `Stopper.stop_all` ends the search: running trials
stop after their current result, no new trial starts, and the results are written as after
any run. The time Ray spends between trials (scheduling, starting workers) is not counted;
`search.time_budget_s` bounds the wall time instead.

Ray takes one `stop`: a dict of per-trial bounds or a `Stopper`. With a budget, the spec's
`stop:` bounds are checked here with Ray's rule for the dict form (a trial stops when a
reported value reaches its bound, `result[key] >= bound`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.tune.stopper import Stopper

__all__ = ["TrialTimeBudget", "build_stop"]


class TrialTimeBudget(Stopper):
    """Stops every trial once the trials' summed time x resources reaches a budget.

    Args:
        cpu_hours: Budget in CPU-hours (None: no CPU budget).
        gpu_hours: Budget in GPU-hours (None: no GPU budget).
        cpus: CPUs per trial.
        gpus: GPUs per trial.
        bounds: The spec's per-trial `stop:` bounds.
    """

    def __init__(
        self,
        *,
        cpu_hours: float | None,
        gpu_hours: float | None,
        cpus: float,
        gpus: float,
        bounds: Mapping[str, float] | None = None,
    ) -> None:
        self.cpu_hours = cpu_hours
        self.gpu_hours = gpu_hours
        self.cpus = cpus
        self.gpus = gpus
        self.bounds = dict(bounds or {})
        self.trial_seconds: dict[str, float] = {}

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        seconds = result.get("time_total_s")
        if isinstance(seconds, (int, float)):
            self.trial_seconds[trial_id] = float(seconds)
        return any(
            isinstance(result.get(key), (int, float)) and result[key] >= bound
            for key, bound in self.bounds.items()
        )

    @property
    def used_cpu_hours(self) -> float:
        """CPU-hours the trials have used so far."""
        return sum(self.trial_seconds.values()) * self.cpus / 3600

    @property
    def used_gpu_hours(self) -> float:
        """GPU-hours the trials have used so far."""
        return sum(self.trial_seconds.values()) * self.gpus / 3600

    def stop_all(self) -> bool:
        cpu_spent = self.cpu_hours is not None and self.used_cpu_hours >= self.cpu_hours
        gpu_spent = self.gpu_hours is not None and self.used_gpu_hours >= self.gpu_hours
        return cpu_spent or gpu_spent


def build_stop(
    bounds: Mapping[str, float],
    *,
    cpu_hours: float | None,
    gpu_hours: float | None,
    cpus: float,
    gpus: float,
) -> Any:
    """What `RunConfig(stop=...)` takes: the bounds as a dict (or None) without a budget,
    else a `TrialTimeBudget` that checks them too."""
    if cpu_hours is None and gpu_hours is None:
        return dict(bounds) or None
    return TrialTimeBudget(
        cpu_hours=cpu_hours, gpu_hours=gpu_hours, cpus=cpus, gpus=gpus, bounds=bounds
    )
