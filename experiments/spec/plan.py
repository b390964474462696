"""A validated spec resolved into what will run: the trainable, space, searcher, scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.experiments.spec.optional_sections import check_tracking
from tunefleet.experiments.spec.slots import local_slots
from tunefleet.search.algorithms import describe_searcher
from tunefleet.search.combinations import SearchConfigError, check_mutations
from tunefleet.search.schedulers import describe_scheduler
from tunefleet.search.space import Const, Space
from tunefleet.trainables.contract import Wrapper
from tunefleet.trainables.resolve import TrainableError, check_trainable, import_object

__all__ = ["Plan", "make_plan", "with_seed"]


@dataclass(frozen=True)
class Plan:
    """Everything `tunefleet run` needs, checked, before Ray starts.

    Attributes:
        spec: The validated spec.
        raw: The mapping the spec was read from (after overrides), kept in the results.
        trainable: The imported user object (function, class or wrapper) as a `Wrapper`.
        given_as_object: The trainable was handed over as an object (`tunefleet.run(...,
            trainable=obj)`) that its import path does not give back, so a later resume
            must be given it again.
    """

    spec: ExperimentSpec
    raw: dict[str, Any]
    trainable: Wrapper
    given_as_object: bool = False

    def describe(self, *, experiment_dir: str | None = None) -> str:
        """The resolved plan, for `tunefleet validate`."""
        spec = self.spec
        rows: list[tuple[str, str]] = [
            ("experiment", spec.name),
            ("trainable", f"{spec.trainable} ({self.trainable.kind})"),
            (
                "objective",
                ", ".join(
                    f"{'maximize' if mode == 'max' else 'minimize'} {metric}"
                    for metric, mode in zip(spec.metrics, spec.modes, strict=True)
                )
                + (" (Pareto front marked; ranked by the first)" if spec.multi_objective else ""),
            ),
        ]
        # The searcher module builds Ray Tune's objects (Ray Tune loads in seconds): `describe`
        # is for `tunefleet validate`, while `make_plan` runs before Ray has started.

        space_lines = spec.space.describe() or ["(empty: every trial gets the same config)"]
        rows += [("space" if i == 0 else "", line) for i, line in enumerate(space_lines)]
        rows += [
            ("searcher", describe_searcher(spec.search, conditional=bool(spec.space.conditional))),
            ("scheduler", self._scheduler_text()),
            ("trials", self._trials_text()),
            ("resources", spec.resources.describe()),
            (
                "stop",
                ", ".join(f"{k} >= {v:g}" for k, v in spec.stop.items())
                or "when the trainable returns",
            ),
        ]
        rows += self._trust_rows()
        if experiment_dir is not None:
            rows.append(("results", experiment_dir))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)

    def _trust_rows(self) -> list[tuple[str, str]]:
        """Baseline, budgets, final evaluation and tracking, when the spec has them."""
        spec, rows = self.spec, []
        if spec.baseline is not None:
            given = ", ".join(f"{k}={v!r}" for k, v in spec.baseline.config.items())
            rows.append(("baseline", f"one trial first: {given or 'the trainable defaults'}"))
        budgets = [
            f"{value:g} {unit}"
            for value, unit in (
                (spec.search.time_budget_s, "s wall time"),
                (spec.search.budget_cpu_hours, "CPU-hours of trials"),
                (spec.search.budget_gpu_hours, "GPU-hours of trials"),
            )
            if value is not None
        ]
        if budgets:
            rows.append(("budget", ", ".join(budgets)))
        if spec.final is not None:
            f = spec.final
            text = f"top {f.top_k} configs x {f.seeds} new seeds on the {f.split} split"
            rows.append(("final", text))
        tracking = spec.tracking
        tools = ["tensorboard"] * tracking.tensorboard + ["mlflow"] * (tracking.mlflow is not None)
        if tools:
            rows.append(("tracking", ", ".join(tools)))
        return rows

    def _scheduler_text(self) -> str:
        if self.spec.search.population_based:
            return f"{self.spec.search.algorithm} (population-based training is the scheduler)"
        return describe_scheduler(self.spec.scheduler, self.spec.stop)

    def _trials_text(self) -> str:
        spec = self.spec
        grid = spec.space.grid_size()
        text = f"{spec.trial_count}"
        if grid > 1:
            text += f" ({spec.search.trials} x {grid} grid points)"
        if spec.search.repeat > 1:
            text += f" ({spec.search.trials} configs x {spec.search.repeat} seeds)"
        return f"{text}; {at_once_text(spec)}"


def at_once_text(spec: ExperimentSpec) -> str:
    """How many trials run at once here, and how that is chosen on a cluster."""
    slots = local_slots(spec)
    here = slots.running
    need = f"{spec.resources.trial_cpu:g} CPU"
    if spec.resources.gpu > 0:
        need += f" and {spec.resources.trial_gpu:g} GPU per trial, fewer if Ray finds fewer GPUs"
    else:
        need += " per trial"
    text = f"up to {here} at once on this machine ({slots.cpus:g} CPUs, {need})"
    cap = spec.search.max_concurrent
    if cap is None:
        return (
            text + "; on a cluster, as many as its nodes fit, following nodes that join or "
            "leave, and as many as its autoscaler may add nodes for"
        )
    if cap > here:
        return (
            text + f"; on a cluster, as many as its nodes fit (and its autoscaler may add "
            f"nodes for), up to {cap} (search.max_concurrent)"
        )
    return text + " (search.max_concurrent)"


def make_plan(
    spec: ExperimentSpec,
    raw: dict[str, Any],
    *,
    trainable: Any = None,
    given_as_object: bool = False,
) -> Plan:
    """Imports and checks the trainable; raises `TrainableError` with a one-line reason.

    Args:
        spec: The validated spec.
        raw: The mapping it was read from.
        trainable: The trainable object itself (a function, class or wrapper), used in
            place of importing `spec.trainable`; None to import it.
        given_as_object: Whether a later resume needs `trainable` again (see `Plan`).
    """
    found = import_object(spec.trainable) if trainable is None else trainable
    obj = check_trainable(found, spec.trainable)
    # A typo in a config key fails here, not in every trial after Ray has started.
    obj.check(config_keys=sorted({path.split("/")[0] for path in spec.space.config_paths()}))
    if spec.resources.workers > 1 and not obj.data_parallel:
        raise TrainableError(
            f"resources.workers: a {obj.kind} trainable trains on one worker; data-parallel "
            "trials need a function trainable or TorchTrainable, or set workers: 1."
        )
    if spec.search.population_based and not obj.supports_checkpoints:
        raise TrainableError(
            f"trainable: {spec.search.algorithm} restores trials from each other's checkpoints, "
            f"but '{spec.trainable}' never saves one; report with a checkpoint (see "
            "tunefleet.trainables.report) or use another search algorithm."
        )
    try:
        check_mutations(spec.search, spec.space, obj.structural_keys, trainable=spec.trainable)
    except SearchConfigError as exc:
        raise TrainableError(str(exc)) from None
    check_tracking(spec.tracking)  # a missing optional package fails here, before Ray starts
    if spec.final is not None and not obj.has_test:
        raise TrainableError(
            f"final: trainable '{spec.trainable}' has no held-out test split; give "
            "TorchTrainable a `test=` function or SklearnTrainable a `test_size=`, or remove "
            "`final:`."
        )
    return Plan(
        spec=with_checkpoints(with_seed(spec, obj), obj),
        raw=raw,
        trainable=obj,
        given_as_object=given_as_object and trainable is not None,
    )


# Schedulers that continue trials from checkpoints: PBT/PB2 exploits, HyperBand's pauses.
RESTORING_SCHEDULERS = ("hyperband",)


def with_checkpoints(spec: ExperimentSpec, trainable: Wrapper) -> ExperimentSpec:
    """The spec with `checkpoint_every: 1` (the wrapper's `checkpoint_key`) in its space when
    its scheduler continues trials from checkpoints and a tunefleet wrapper would otherwise
    save them only every few seconds (a PBT exploit or a resumed pause would go back to an
    older state). Left alone when the spec or the wrapper's `preset_keys` set the key."""
    key = trainable.checkpoint_key
    restoring = spec.search.population_based or spec.scheduler.name in RESTORING_SCHEDULERS
    if key is None or not restoring:
        return spec
    if key in spec.space.params or key in trainable.preset_keys:
        return spec
    params = {**spec.space.params, key: Const(1)}
    return spec.model_copy(update={"space": Space(params)})


def with_seed(spec: ExperimentSpec, trainable: Wrapper) -> ExperimentSpec:
    """The spec with a constant `seed` in its space when a tunefleet wrapper would otherwise
    fall back to its default seed, so every trial's seed is in its config (and in the results'
    `config/seed` column). The value is `search.seed` (0 when unset).

    Left alone: trainables that do not read `seed` (user functions and classes: the key
    would be new to them), spaces that set `seed` or `random_state` themselves, and wrappers
    whose `preset_keys` (`defaults`, `fixed_params`) fix them.
    """
    if not trainable.reads_seed:
        return spec
    taken = {"seed", "random_state"}
    if taken & set(spec.space.params) or taken & trainable.preset_keys:
        return spec
    params = {**spec.space.params, "seed": Const(spec.search.seed or 0)}
    return spec.model_copy(update={"space": Space(params)})
