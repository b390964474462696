"""Which searcher, scheduler and space go together: checked before Ray starts.

Ray raises most of these only after start-up, from deep inside a run (PBT with a searcher,
`grid_search` with Hyperopt or Optuna, a scheduler without a budget); some it accepts and
then quietly misbehaves (CMA-ES falling back to random sampling for categorical parameters,
repeated trials cut short by early stopping). Each rule here gives one line that says which
key is wrong and what to do instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tunefleet.common.errors import TunefleetError
from tunefleet.search.schedulers import (
    AnyScheduler,
    AshaSettings,
    FifoSettings,
    HyperbandSettings,
    resolved_max_t,
)
from tunefleet.search.settings import SearchSettings
from tunefleet.search.space import Choice, Conditional, Float, Int, Normal, Param, Space

__all__ = ["SearchConfigError", "check_mutations", "check_objectives", "check_search"]


class SearchConfigError(TunefleetError, ValueError):
    """An invalid combination of searcher, scheduler and space."""


def _key(path: str) -> str:
    return "space." + path.replace("/", ".")


def check_search(
    search: SearchSettings, scheduler: AnyScheduler, space: Space, stop: dict[str, Any]
) -> None:
    """Raises `SearchConfigError` for the first rule the combination breaks."""
    _check_conditional(search, space)
    _check_normal(search, space)
    _check_grid(search, space)
    _check_sampler(search, space)
    _check_population(search, scheduler, space)
    _check_something_to_search(search, space)
    _check_scheduler(search, scheduler, stop)
    _check_points(search, space)


def _every_param(space: Space, root: str = "space") -> Iterator[tuple[str, Param]]:
    """Each parameter with its key as the spec writes it, branch parameters included
    (`space.optimizer.choice.sgd.lr`)."""
    for path, param in space.params.items():
        key = ".".join((root, *path.split("/")))
        yield key, param
        if isinstance(param, Conditional):
            for value, branch in zip(param.values, param.branches, strict=True):
                yield from _every_param(branch, f"{key}.choice.{value}")


def _check_normal(search: SearchSettings, space: Space) -> None:
    """Normal and log-normal parameters have no bounds: only random search (Ray's variant
    generator), Hyperopt and PBT sample them."""
    found = next(((k, p) for k, p in _every_param(space) if isinstance(p, Normal)), None)
    if found is None:
        return
    key, param = found
    algorithm = search.algorithm
    on_optuna = "Optuna's random sampler, which draws only from bounded ranges"
    reason = {
        "optuna": "Optuna's samplers draw only from bounded ranges",
        "grid": "grid tries fixed values",
        "pb2": "pb2 models parameters between bounds",
    }.get(algorithm)
    can = "use algorithm random, hyperopt or pbt, which sample it"
    if algorithm == "random" and space.conditional:
        reason = f"random search over a conditional space runs on {on_optuna}"
        can = "use algorithm hyperopt, which samples it"
    elif algorithm == "random" and search.repeat > 1:
        reason = f"random search with search.repeat runs on {on_optuna}"
        can = "use algorithm hyperopt (which samples it), or remove repeat"
    if reason is None:
        return
    low, high = param.interval()
    bounded = "loguniform" if param.log else "uniform"
    raise SearchConfigError(
        f"{key}: a {param.keyword} distribution has no bounds, but {reason}; {can}, or give "
        f"bounds, e.g. `{bounded}: [{low:.4g}, {high:.4g}]` (its 95% range)."
    )


def _check_something_to_search(search: SearchSettings, space: Space) -> None:
    """A space of constants only gives every trial the same config: one run of it is a
    baseline, more are the same run again (`search.repeat` reruns it with other seeds)."""
    if space.searched or search.algorithm == "grid" or search.population_based:
        return  # grid and population-based search have rules of their own
    samples = search.algorithm in ("hyperopt", "optuna")
    trials = search.trials
    if not samples and trials <= 1:
        return
    if samples:
        why = f"search.algorithm '{search.describe_algorithm}' has nothing to sample"
        single = "use algorithm random with `search.num_samples: 1`"
    else:
        default = " (the default)" if search.num_samples is None else ""
        why = f"all search.num_samples={trials}{default} trials would run the same config"
        single = "set `search.num_samples: 1`"
    raise SearchConfigError(
        f"space: no distribution to search, so {why}; add one (e.g. `lr: {{loguniform: "
        f"[1.0e-4, 1.0e-1]}}`), or for one run of these constants {single} (with "
        "`search.repeat: N` to run it with N seeds)."
    )


def _check_conditional(search: SearchSettings, space: Space) -> None:
    if not space.conditional:
        return
    where = _key(next(iter(space.conditional)))
    algorithm = search.describe_algorithm
    if search.algorithm in ("grid", "pbt", "pb2") or algorithm in (
        "optuna cmaes",
        "optuna gp",
        "optuna qmc",
    ):
        reason = {
            "grid": "tries fixed values",
            "pbt": "mutates every trial's parameters in place",
            "pb2": "models a fixed set of numeric parameters",
        }.get(search.algorithm, "needs the same parameters in every trial")
        raise SearchConfigError(
            f"{where}: a choice with parameters per value needs a searcher that samples "
            f"them conditionally, but '{algorithm}' {reason}; use algorithm random, "
            "hyperopt, or optuna with sampler tpe, nsga2 or random."
        )
    if space.grid:
        raise SearchConfigError(
            f"{_key(next(iter(space.grid)))}: `grid` values cannot be combined with a choice "
            f"that has parameters per value ({where}); use `choice` instead."
        )
    if search.points_to_evaluate:
        raise SearchConfigError(
            f"search.points_to_evaluate: not supported with a choice that has parameters "
            f"per value ({where}); remove points_to_evaluate."
        )


def _check_grid(search: SearchSettings, space: Space) -> None:
    algorithm = search.algorithm
    grid = space.grid
    if grid and algorithm not in ("random", "grid"):
        raise SearchConfigError(
            f"{_key(next(iter(grid)))}: `grid` values cannot be used with search.algorithm "
            f"'{algorithm}', which samples; use `choice` instead, or algorithm random or grid."
        )
    if grid and algorithm == "random" and search.repeat > 1:
        # Repeated random configs come from Optuna's random sampler (Ray's Repeater needs a
        # Searcher), which cannot take Ray's grid values.
        raise SearchConfigError(
            f"search.repeat: `grid` values ({_key(next(iter(grid)))}) cannot be repeated by "
            "algorithm random; to repeat each config with other seeds, add "
            "`seed: {grid: [0, 1, 2]}` to space instead of repeat."
        )
    if algorithm != "grid":
        return
    if not grid:
        raise SearchConfigError(
            "search.algorithm: 'grid' needs at least one `grid:` parameter in space; "
            "write e.g. `lr: {grid: [0.01, 0.1]}`, or use algorithm random."
        )
    sampled = [k for k in space.searched if k not in grid]
    if sampled:
        raise SearchConfigError(
            f"{_key(sampled[0])}: search.algorithm 'grid' tries fixed values, but this "
            f"parameter is a {space.params[sampled[0]].keyword} distribution; make it a "
            "`grid:` list, or use algorithm random (which samples it on top of the grid)."
        )
    if search.repeat > 1:
        raise SearchConfigError(
            "search.repeat: grid evaluates fixed configs; to repeat each with other seeds, "
            "add `seed: {grid: [0, 1, 2]}` to space."
        )


def _check_sampler(search: SearchSettings, space: Space) -> None:
    if search.algorithm != "optuna" or search.optuna_sampler != "cmaes":
        return
    for path, param in space.searched.items():
        if isinstance(param, Choice):
            raise SearchConfigError(
                f"{_key(path)}: the cmaes sampler handles numeric parameters only (Optuna "
                "would sample this choice at random); use sampler tpe or gp, or make it numeric."
            )
    if len(space.searched) < 2:
        raise SearchConfigError(
            "search.sampler: cmaes needs at least two numeric parameters to adapt a "
            "covariance; use sampler tpe or gp for a one-dimensional space."
        )


def _check_population(search: SearchSettings, scheduler: AnyScheduler, space: Space) -> None:
    algorithm = search.algorithm
    if not search.population_based:
        return
    if not isinstance(scheduler, FifoSettings):
        raise SearchConfigError(
            f"scheduler.name: {algorithm} is itself the scheduler (it pauses, copies and "
            f"perturbs trials); remove the `scheduler` section or set `name: fifo`."
        )
    if not space.searched:
        raise SearchConfigError(
            f"space: {algorithm} needs at least one searched parameter to mutate; "
            "add a distribution to space."
        )
    cap, population = search.max_concurrent, search.trials
    if cap is not None and cap < population:
        # Ray starts the next trials only when earlier ones end, so a capped population
        # trains in waves: trials of different waves are never compared or copied.
        raise SearchConfigError(
            f"search.max_concurrent: {algorithm} compares and copies trials that train side "
            f"by side, but max_concurrent={cap} < num_samples={population} runs the "
            f"population in waves that never exploit each other; remove max_concurrent "
            f"(trials beyond the free CPUs wait paused) or lower num_samples to {cap}."
        )
    if algorithm == "pb2":
        for path, param in space.searched.items():
            if not isinstance(param, (Float, Int)):
                raise SearchConfigError(
                    f"{_key(path)}: pb2 models numeric parameters only, but this is a "
                    f"{param.keyword}; make it numeric, or use algorithm pbt."
                )
        for path, param in space.searched.items():
            # Ray's PB2 gets [low, high] bounds and fits and explores them on a linear
            # scale: a log-scaled range would be explored almost only near its top.
            if isinstance(param, (Float, Int)) and param.log:
                linear = "uniform" if isinstance(param, Float) else "randint"
                raise SearchConfigError(
                    f"{_key(path)}: pb2 explores bounds on a linear scale only, but this is "
                    f"{param.keyword}[{param.low:g}, {param.high:g}]; use `{linear}` bounds "
                    "(e.g. over the exponent), or algorithm pbt."
                )


def _check_scheduler(search: SearchSettings, scheduler: AnyScheduler, stop: dict[str, Any]) -> None:
    if isinstance(scheduler, FifoSettings):
        return
    if search.repeat > 1:
        raise SearchConfigError(
            f"search.repeat: repeated evaluations are averaged only when every repeat runs "
            f"to the end, but scheduler '{scheduler.name}' stops trials early; use scheduler "
            "fifo or remove repeat."
        )
    if isinstance(scheduler, (AshaSettings, HyperbandSettings)):
        attr = scheduler.time_attr
        if scheduler.max_t is None and attr not in stop:
            raise SearchConfigError(
                f"scheduler.max_t: {scheduler.name} needs a budget; set `scheduler.max_t` or "
                f"`stop.{attr}`."
            )
        max_t = resolved_max_t(scheduler, stop)
        if max_t is None or scheduler.max_t is not None:
            return  # an explicit max_t is checked by the settings themselves
        if max_t < 1:
            raise SearchConfigError(
                f"scheduler.max_t: {scheduler.name} takes its budget from stop.{attr}="
                f"{stop[attr]:g}, which gives max_t={max_t} (whole units of {attr}); set "
                f"`scheduler.max_t` to at least 1 or raise stop.{attr}."
            )
        if isinstance(scheduler, AshaSettings) and scheduler.grace_period > max_t:
            raise SearchConfigError(
                f"scheduler.grace_period: must be <= max_t, but got grace_period="
                f"{scheduler.grace_period} and max_t={max_t} (from stop.{attr}); lower "
                f"grace_period or raise stop.{attr}."
            )


def _check_points(search: SearchSettings, space: Space) -> None:
    names = set(space.params)
    for i, point in enumerate(search.points_to_evaluate):
        for key in _flat_keys(point, names):
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else "."
                raise SearchConfigError(
                    f"search.points_to_evaluate[{i}].{key.replace('/', '.')}: not a parameter "
                    f"of space{hint}"
                )


def _flat_keys(point: dict[str, Any], names: set[str], prefix: str = "") -> list[str]:
    """The parameter paths a point sets (`model/depth`); a mapping that is not itself a
    parameter is a group."""
    keys = []
    for key, value in point.items():
        path = f"{prefix}{key}"
        if path not in names and isinstance(value, dict) and value:
            keys.extend(_flat_keys(value, names, path + "/"))
        else:
            keys.append(path)
    return keys


def check_mutations(
    search: SearchSettings, space: Space, fixed_keys: Iterable[str], *, trainable: str
) -> None:
    """Refuses PBT/PB2 mutating a config key the trainable cannot change mid-training.

    PBT restores a trial from another trial's checkpoint and then changes its config. A
    key that decides the kind of saved state (the optimizer, the learning-rate schedule)
    cannot change there: the trial would load one optimizer's state into another.

    Args:
        search: The `search:` section.
        space: The parsed space.
        fixed_keys: Flat config paths the trainable reads only when a trial starts (e.g.
            `TorchTrainable.structural_keys`).
        trainable: The spec's trainable path, for the message.

    Raises:
        SearchConfigError: If a population-based search would mutate one of `fixed_keys`.
    """
    if not search.population_based:
        return
    for key in fixed_keys:
        if key in space.searched:
            raise SearchConfigError(
                f"{_key(key)}: {search.algorithm} changes searched parameters in the middle "
                f"of a trial, but '{trainable}' cannot change `{key}` there (a trial would "
                f"load saved state of another kind); set it to one value, or compare its "
                "values with algorithm random, hyperopt or optuna."
            )


def check_objectives(
    search: SearchSettings,
    scheduler: AnyScheduler,
    metric: str | Sequence[str],
    mode: str | Sequence[str],
) -> None:
    """Checks the spec's `metric` and `mode`: one of each, or equal-length lists of two or
    more (multi-objective), which only Optuna's nsga2 and tpe samplers with scheduler fifo
    can search.

    Raises:
        SearchConfigError: With one line saying which key is wrong and what to do.
    """
    if isinstance(metric, str) and isinstance(mode, str):
        return
    if isinstance(metric, str) or isinstance(mode, str):
        shown = [m if isinstance(m, str) else list(m) for m in (metric, mode)]
        raise SearchConfigError(
            f"mode: give one mode per metric, but metric is {shown[0]!r} and mode is "
            f"{shown[1]!r}; write both as lists of the same length, or both as single values."
        )
    if len(metric) != len(mode):
        raise SearchConfigError(
            f"mode: {len(metric)} metrics but {len(mode)} modes; give one mode per metric."
        )
    if len(metric) < 2:
        raise SearchConfigError(
            "metric: a list is for two or more objectives; write a single metric as "
            "`metric: name` and `mode: max` (or min)."
        )
    twice = next((m for i, m in enumerate(metric) if m in metric[:i]), None)
    if twice is not None:
        raise SearchConfigError(f"metric: '{twice}' is listed twice; list each objective once.")
    n = len(metric)
    if search.algorithm != "optuna" or search.optuna_sampler not in ("nsga2", "tpe"):
        raise SearchConfigError(
            f"search.algorithm: {n} metrics (multi-objective) need algorithm optuna with sampler "
            f"nsga2 or tpe, but the searcher is '{search.describe_algorithm}'; set `algorithm: "
            "optuna` and `sampler: nsga2` (or tpe), or give a single metric."
        )
    if not isinstance(scheduler, FifoSettings):
        raise SearchConfigError(
            f"scheduler.name: {scheduler.name} stops trials early by one metric and cannot "
            f"rank trials on {n} objectives; use scheduler fifo, or give a single metric."
        )
    if search.repeat > 1:
        raise SearchConfigError(
            f"search.repeat: repeated evaluations are averaged for one metric only, but there "
            f"are {n}; remove repeat, or give a single metric."
        )
