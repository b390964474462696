"""Advice on a valid spec: practices worth a warning, never a refusal.

`tunefleet validate` and `tunefleet run` (once, before Ray starts) print each as one line on
stderr, prefixed `warning:`. The rules:

- **Linear scale over decades:** a `uniform`/`randint` parameter with `low > 0` and
  `high / low > 100` (more than two decades) spends almost every sample in the top decade;
  `loguniform`/`lograndint` spreads them evenly.
- **Budget too small:** only when the spec itself shows it, i.e. when `stop.time_total_s`
  bounds each trial and the scheduler is `fifo` (so every trial runs to that bound): the
  trials need `ceil(trials / parallel) * stop.time_total_s` seconds of wall time (`parallel`
  as `validate` prints it: CPUs of this machine over CPUs per trial, capped by
  `max_concurrent`) and `trials * cpu * stop.time_total_s` CPU-seconds. A
  `search.time_budget_s` or `search.budget_cpu_hours` below that ends the search before
  `num_samples` trials can finish. How long a trial takes is otherwise unknown before it
  runs, so nothing is guessed. A `search.budget_gpu_hours` with `resources.gpu: 0` is never
  spent, and says so.
- **Early stopping off:** the scheduler is `fifo` for an iterative trainable (one that
  reports more than once: `stop.training_iteration > 1`, or, with no such stop, a class
  trainable or a wrapper marked `iterative`, such as the PyTorch one), without `repeat`
  (which needs `fifo`) or population-based training (its own scheduler).
"""

from __future__ import annotations

import math

from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.experiments.spec.slots import local_slots
from tunefleet.search.schedulers import FifoSettings
from tunefleet.search.space import Float, Int
from tunefleet.trainables.contract import Wrapper

__all__ = ["DECADES", "advise", "parallel_trials"]

DECADES = 2
"""A positive linear-scale parameter spanning more than this many decades gets a warning."""


def advise(spec: ExperimentSpec, trainable: Wrapper | None = None) -> list[str]:
    """The warnings for a valid spec, one line each (without the `warning:` prefix).

    Args:
        spec: The validated spec.
        trainable: The imported trainable (`Plan.trainable`), if known.
    """
    return [*_linear_scales(spec), *_budgets(spec), *_early_stopping(spec, trainable)]


def _linear_scales(spec: ExperimentSpec) -> list[str]:
    lines = []
    for path, param in spec.space.searched.items():
        if not isinstance(param, (Float, Int)) or param.log or param.low <= 0:
            continue
        ratio = param.high / param.low
        if ratio > 10**DECADES:
            better = "loguniform" if isinstance(param, Float) else "lograndint"
            lines.append(
                f"space.{path.replace('/', '.')}: {param.keyword} over [{param.low:g}, "
                f"{param.high:g}] spans {math.log10(ratio):.1f} decades on a linear scale, so "
                f"few samples land in the lower ones; use {better}."
            )
    return lines


def parallel_trials(spec: ExperimentSpec) -> int:
    """Trials that can run at once on this machine (as `tunefleet validate` prints it)."""
    return local_slots(spec).running


def _budgets(spec: ExperimentSpec) -> list[str]:
    search = spec.search
    lines = []
    if search.budget_gpu_hours is not None and spec.resources.gpu == 0:
        lines.append(
            "search.budget_gpu_hours: trials reserve no GPU (resources.gpu is 0), so this "
            "budget is never spent; use budget_cpu_hours or set resources.gpu."
        )
    per_trial = spec.stop.get("time_total_s")
    if per_trial is None or not isinstance(spec.scheduler, FifoSettings):
        return lines
    trials = spec.trial_count
    wall = math.ceil(trials / parallel_trials(spec)) * per_trial
    if search.time_budget_s is not None and search.time_budget_s < wall:
        lines.append(
            f"search.time_budget_s: {search.time_budget_s:g} s cannot finish {trials} trials "
            f"of stop.time_total_s={per_trial:g} s ({parallel_trials(spec)} at a time need "
            f"{wall:g} s); raise it to {wall:g} or lower num_samples."
        )
    cpu_hours = search.budget_cpu_hours
    need = trials * spec.resources.trial_cpu * per_trial / 3600
    if cpu_hours is not None and cpu_hours < need:
        lines.append(
            f"search.budget_cpu_hours: {cpu_hours:g} cannot finish {trials} trials of "
            f"stop.time_total_s={per_trial:g} s on {spec.resources.trial_cpu:g} CPU each "
            f"({need:.3g} CPU-hours); raise it or lower num_samples."
        )
    return lines


def _early_stopping(spec: ExperimentSpec, trainable: Wrapper | None) -> list[str]:
    if not isinstance(spec.scheduler, FifoSettings) or spec.search.population_based:
        return []
    if spec.search.repeat > 1:
        return []
    iterations = spec.stop.get("training_iteration")
    if iterations is not None:
        iterative = iterations > 1
    else:
        iterative = trainable is not None and trainable.iterative
    if not iterative:
        return []
    return [
        "scheduler: fifo runs every trial of this iterative trainable to its end; set "
        "`scheduler: {name: asha}` to stop weak trials early."
    ]
