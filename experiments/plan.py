"""A validated spec resolved into what will run: the trainable, space, searcher, scheduler."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tunefleet.experiments.spec import ExperimentSpec
from tunefleet.search.algorithms import describe_searcher
from tunefleet.search.schedulers import describe_scheduler
from tunefleet.trainables.resolve import (
    TrainableError,
    can_checkpoint,
    check_trainable,
    import_object,
)

__all__ = ["Plan", "make_plan"]


@dataclass(frozen=True)
class Plan:
    """Everything `tunefleet run` needs, checked, before Ray starts.

    Attributes:
        spec: The validated spec.
        raw: The mapping the spec was read from (after overrides), kept in the results.
        trainable: The imported user object (function, Trainable class or wrapper).
    """

    spec: ExperimentSpec
    raw: dict[str, Any]
    trainable: Any

    def describe(self, *, experiment_dir: str | None = None) -> str:
        """The resolved plan, for `tunefleet validate`."""
        spec = self.spec
        rows: list[tuple[str, str]] = [
            ("experiment", spec.name),
            ("trainable", f"{spec.trainable} ({_kind(self.trainable)})"),
            ("objective", f"{'maximize' if spec.mode == 'max' else 'minimize'} {spec.metric}"),
        ]
        space_lines = spec.space.describe() or ["(empty: every trial gets the same config)"]
        rows += [("space" if i == 0 else "", line) for i, line in enumerate(space_lines)]
        rows += [
            ("searcher", describe_searcher(spec.search)),
            ("scheduler", self._scheduler_text()),
            ("trials", self._trials_text()),
            ("resources", f"{spec.resources.cpu:g} CPU, {spec.resources.gpu:g} GPU per trial"),
            (
                "stop",
                ", ".join(f"{k} >= {v:g}" for k, v in spec.stop.items())
                or "when the trainable returns",
            ),
        ]
        if experiment_dir is not None:
            rows.append(("results", experiment_dir))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)

    def _scheduler_text(self) -> str:
        if self.spec.search.population_based:
            return f"{self.spec.search.algorithm} (population-based training is the scheduler)"
        return describe_scheduler(self.spec.scheduler, self.spec.stop)

    def _trials_text(self) -> str:
        spec = self.spec
        grid = spec.space.grid_size()
        count = spec.search.trials * grid * spec.search.repeat
        text = f"{count}"
        if grid > 1:
            text += f" ({spec.search.trials} x {grid} grid points)"
        if spec.search.repeat > 1:
            text += f" ({spec.search.trials} configs x {spec.search.repeat} seeds)"
        cpus = os.cpu_count() or 1
        parallel = max(1, int(cpus // spec.resources.cpu))
        if spec.search.max_concurrent is not None:
            parallel = min(parallel, spec.search.max_concurrent)
        text += f"; up to {parallel} at once on this machine ({cpus} CPUs)"
        return text


def _kind(obj: Any) -> str:
    if hasattr(obj, "to_tune"):
        return type(obj).__name__
    return "class" if isinstance(obj, type) else "function"


def make_plan(spec: ExperimentSpec, raw: dict[str, Any]) -> Plan:
    """Imports and checks the trainable; raises `TrainableError` with a one-line reason."""
    obj = check_trainable(import_object(spec.trainable), spec.trainable)
    check = getattr(obj, "check", None)
    if callable(check):
        # Wrappers check the config keys the space will set (a typo fails here, not in
        # every trial after Ray has started).
        check(config_keys=sorted({path.split("/")[0] for path in spec.space.params}))
    if spec.search.population_based and not can_checkpoint(obj):
        raise TrainableError(
            f"trainable: {spec.search.algorithm} restores trials from each other's checkpoints, "
            f"but '{spec.trainable}' never saves one; report with a checkpoint (see "
            "tunefleet.trainables.report) or use another search algorithm."
        )
    return Plan(spec=spec, raw=raw, trainable=obj)
