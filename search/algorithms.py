"""Builds the Ray Tune search algorithm and scheduler a spec asks for.

Every piece is Ray Tune's, Optuna's or Hyperopt's own (`BasicVariantGenerator`,
`HyperOptSearch` (taught log-normal parameters), `OptunaSearch` around Optuna's samplers,
`Repeater`, `PopulationBasedTraining`, `PB2`); this module only chooses, configures and
seeds them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Repeater
from ray.tune.search.basic_variant import BasicVariantGenerator

from tunefleet.common.nesting import find_path, nest
from tunefleet.search.conditional import ConditionalSearcher, DefineByRun, hyperopt_space
from tunefleet.search.schedulers import AnyScheduler, build_scheduler
from tunefleet.search.searcher_wrappers import FiniteTarget
from tunefleet.search.settings import SearchSettings
from tunefleet.search.space import Choice, Const, Float, Int, Normal, Space
from tunefleet.search.tune_space import to_tune_domain, to_tune_param_space
from tunefleet.search.typed_choices import DecodeChoices, encode_point, encoded_choices

__all__ = [
    "TuneSearch",
    "build_search",
    "build_searcher",
    "describe_searcher",
    "takes_earlier_results",
    "uses_searcher",
]


@dataclass(frozen=True)
class TuneSearch:
    """What goes into the Tuner: a search algorithm, a scheduler and the `param_space`."""

    search_alg: Any
    scheduler: Any
    param_space: dict[str, Any]


def build_search(
    search: SearchSettings,
    scheduler: AnyScheduler,
    *,
    space: Space,
    stop: dict[str, Any],
    metric: str | list[str] | None = None,
    mode: str | Sequence[str] | None = None,
    parallel: int = 1,
) -> TuneSearch:
    """Returns the searcher and scheduler for a spec.

    Population-based training (`pbt`, `pb2`) is a Ray scheduler that samples its initial
    population from the space; every other algorithm pairs a searcher with the spec's
    scheduler.

    Args:
        search: The validated `search:` section.
        scheduler: The validated `scheduler:` section.
        space: The parsed space.
        stop: The spec's stop criteria.
        metric: The target metric (a list for multi-objective Optuna). Needed by searchers
            built with their own space (conditional spaces) and by multi-objective Optuna;
            others get it from `tune.TuneConfig`.
        mode: `min` or `max` (a list, one per metric).
        parallel: Trials that will run at once; above 1, Optuna's TPE sampler counts those
            still running (`constant_liar`) unless the spec says otherwise.
    """
    if mode is not None and not isinstance(mode, str):
        mode = list(mode)  # the spec's list of modes (multi-objective)
    if space.conditional:
        if metric is None or mode is None:
            raise ValueError("a conditional space needs the metric and mode at construction.")
        return TuneSearch(
            search_alg=_conditional_searcher(search, space, metric, mode, parallel),
            scheduler=build_scheduler(scheduler, stop=stop),
            param_space=to_tune_param_space(
                Space({k: p for k, p in space.params.items() if isinstance(p, Const)})
            ),
        )
    if search.population_based:
        return TuneSearch(
            search_alg=BasicVariantGenerator(
                max_concurrent=search.max_concurrent or 0, random_state=search.seed
            ),
            scheduler=_population_scheduler(search, space),
            param_space=to_tune_param_space(space),
        )
    if not space.searched and search.repeat > 1:
        # One config of constants, repeated with other seeds: no backend to sample with.
        from ray.tune.search import Repeater

        from tunefleet.search.searcher_wrappers import NoSearch

        return TuneSearch(
            search_alg=Repeater(NoSearch(), repeat=search.repeat, set_index=True),
            scheduler=build_scheduler(scheduler, stop=stop),
            param_space=to_tune_param_space(space),
        )
    # Ray's variant generator samples choice values as they are; the model-based
    # backends get indices for values they would not return intact (lists, dicts).
    choices = encoded_choices(space) if _backend(search) != "variants" else {}
    return TuneSearch(
        search_alg=build_searcher(search, choices, metric=metric, mode=mode, parallel=parallel),
        scheduler=build_scheduler(scheduler, stop=stop),
        param_space=to_tune_param_space(space, by_index=choices),
    )


def uses_searcher(settings: SearchSettings, space: Space) -> bool:
    """Whether `build_search` gives a Ray `Searcher` (which Ray runs one trial at a time
    unless told a cap) rather than Ray's variant generator (random, grid, PBT, PB2)."""
    if space.conditional:
        return True
    return not settings.population_based and _backend(settings) != "variants"


def takes_earlier_results(settings: SearchSettings, space: Space) -> bool:
    """Whether the searcher `build_search` gives can be told earlier configs and results
    (Ray's `add_evaluated_point`), as `resume --extend` does: Ray's `OptunaSearch` on a flat
    space without repeats. Not Ray's `HyperOptSearch` (no such method in Ray 2.55-2.60),
    nor its `Repeater` (it would have to be told each copy), nor Optuna's define-by-run
    (conditional spaces), nor the variant generator."""
    return settings.algorithm == "optuna" and settings.repeat == 1 and not space.conditional


def _backend(settings: SearchSettings) -> str:
    if settings.algorithm == "random" and settings.repeat > 1:
        # Repeater needs a Searcher; Optuna's random sampler is a seeded random search.
        return "optuna-random"
    if settings.algorithm in ("random", "grid"):
        return "variants"
    return settings.algorithm


def build_searcher(
    settings: SearchSettings,
    choices: dict[str, tuple[Any, ...]] | None = None,
    *,
    metric: str | list[str] | None = None,
    mode: str | list[str] | None = None,
    parallel: int = 1,
) -> Any:
    """Returns the Ray Tune search algorithm for `settings` (not PBT).

    The search space is not given here: the Tuner's `param_space` hands it to the searcher,
    which converts it for its backend. The metric and mode come from `tune.TuneConfig`
    too, except for multi-objective Optuna (lists, which TuneConfig refuses).

    Args:
        settings: The validated `search:` section.
        choices: Choices offered to the backend as indices (see `encoded_choices`); the
            searcher is wrapped to decode them.
        metric: A list of metrics: multi-objective Optuna; otherwise ignored.
        mode: The modes of those metrics.
        parallel: Trials that will run at once (see `build_search`).
    """
    choices = choices or {}
    points = [encode_point(nest(p), choices) for p in settings.points_to_evaluate] or None
    algorithm = _backend(settings)
    if algorithm == "variants":
        # Ray applies `TuneConfig.max_concurrent_trials` only to a `Searcher` (through a
        # ConcurrencyLimiter); this generator is not one, so it must carry the cap itself.
        return BasicVariantGenerator(
            points_to_evaluate=points,
            max_concurrent=settings.max_concurrent or 0,
            random_state=settings.seed,
        )
    searcher: Any
    if algorithm == "hyperopt":
        searcher = _hyperopt(settings, points=points)
    elif algorithm in ("optuna", "optuna-random"):
        sampler = _optuna_sampler(settings, random=algorithm == "optuna-random", parallel=parallel)
        # TuneConfig takes one metric; several (multi-objective) go to the searcher.
        several = isinstance(metric, list)
        searcher = _optuna(
            sampler,
            points=points,
            metric=list(metric) if isinstance(metric, list) else None,
            mode=list(mode or []) if several else None,
        )
    else:
        raise ValueError(f"not a searcher: {algorithm!r}")
    # NaN, infinite or missing values of the target reach the backend as failed trials.
    searcher = FiniteTarget(searcher)
    if choices:
        searcher = DecodeChoices(searcher, choices)
    return _repeated(searcher, settings.repeat)


def _conditional_searcher(
    settings: SearchSettings,
    space: Space,
    metric: str | list[str],
    mode: str | list[str],
    parallel: int,
) -> Any:
    """Hyperopt with nested `hp.choice`, or Optuna define-by-run (random search: Optuna's
    random sampler), built with their own space and wrapped to decode suggestions."""
    searcher: Any
    if settings.algorithm == "hyperopt":
        # One objective: check_objectives refuses several for Hyperopt.
        assert not isinstance(metric, list) and not isinstance(mode, list)
        searcher = _hyperopt(settings, space=hyperopt_space(space), metric=metric, mode=mode)
    else:
        sampler = _optuna_sampler(
            settings, random=settings.algorithm == "random", conditional=True, parallel=parallel
        )
        searcher = _optuna(sampler, space=DefineByRun(space), metric=metric, mode=mode)
    # NaN, infinite or missing values of the target reach the backend as failed trials.
    searcher = ConditionalSearcher(FiniteTarget(searcher), space)
    return _repeated(searcher, settings.repeat)


def _hyperopt(
    settings: SearchSettings,
    *,
    space: dict[str, Any] | None = None,
    points: list[dict[str, Any]] | None = None,
    metric: str | None = None,
    mode: str | None = None,
) -> Any:
    """Ray's `HyperOptSearch` (knowing tunefleet's log-normal domains), seeded; with its own
    `space` for conditional spaces, else it gets the Tuner's `param_space`."""
    # Hyperopt loads only for a Hyperopt search.
    from tunefleet.search.hyperopt_search import LogNormalHyperOptSearch

    startup: dict[str, Any] = {}  # unset: Hyperopt's own default
    if settings.n_initial_points is not None:
        startup["n_initial_points"] = settings.n_initial_points
    return LogNormalHyperOptSearch(
        space=space,
        metric=metric,
        mode=mode,
        points_to_evaluate=points,
        random_state_seed=settings.seed,
        **startup,
    )


def _optuna(
    sampler: Any,
    *,
    space: Any = None,
    points: list[dict[str, Any]] | None = None,
    metric: str | list[str] | None = None,
    mode: str | list[str] | None = None,
) -> Any:
    """Ray's `OptunaSearch` around `sampler`; with its own `space` (define-by-run) for
    conditional spaces, else it gets the Tuner's `param_space`."""
    # Optuna loads only for an Optuna search (about half a second).
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(
        space=space, metric=metric, mode=mode, points_to_evaluate=points, sampler=sampler
    )


def _repeated(searcher: Any, repeat: int) -> Any:
    """Ray's `Repeater` around `searcher` when each config runs `repeat` times (the trial
    copies numbered by `__trial_index__`, the searcher told their mean)."""
    if repeat == 1:
        return searcher
    return Repeater(searcher, repeat=repeat, set_index=True)


def _optuna_sampler(
    settings: SearchSettings, *, random: bool = False, conditional: bool = False, parallel: int = 1
) -> Any:
    """The sampler `settings` asks for, or Optuna's seeded random sampler (`random`)."""
    import optuna  # Optuna: only for an Optuna search

    from tunefleet.search import optuna_samplers  # imports Optuna: only for an Optuna search

    if random:
        return optuna_samplers.RandomSampler(seed=settings.seed)
    with warnings.catch_warnings():
        # Multivariate TPE and QMC are marked experimental by Optuna; they are chosen here.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_optuna_sampler(settings, conditional=conditional, parallel=parallel)


def _make_optuna_sampler(
    settings: SearchSettings, *, conditional: bool = False, parallel: int = 1
) -> Any:
    """The sampler. With trials in parallel: TPE's constant liar counts the running ones as
    bad results; Optuna 5's GP conditions on them itself (q-batch expected improvement);
    CMA-ES and NSGA-II sample a generation at a time, so parallel trials are members of one;
    QMC and random points are independent of results."""
    # Optuna's samplers, picklable as Ray needs (`tunefleet.search.optuna_samplers`); loaded
    # only for an Optuna search.
    from tunefleet.search import optuna_samplers as samplers

    sampler = settings.sampler
    seed = settings.seed
    startup: dict[str, Any] = (
        {"n_startup_trials": settings.n_initial_points} if settings.n_initial_points else {}
    )
    name = settings.optuna_sampler
    options = sampler.model_dump(exclude={"name"}, exclude_none=True) if sampler else {}
    if name == "tpe":
        options.setdefault("multivariate", True)
        if conditional and options["multivariate"]:
            # Optuna's own answer to conditional spaces: model each set of parameters
            # that occur together jointly, instead of only those every trial has.
            options["group"] = True
        options.setdefault("constant_liar", parallel > 1)
        return samplers.TPESampler(seed=seed, **options, **startup)
    if name == "cmaes":
        return samplers.CmaEsSampler(seed=seed, **options, **startup)
    if name == "gp":
        return samplers.GPSampler(seed=seed, **options, **startup)
    if name == "nsga2":
        return samplers.NSGAIISampler(seed=seed, **options)
    if name == "qmc":
        return samplers.QMCSampler(seed=seed, **options)
    return samplers.RandomSampler(seed=seed)


# Population-based training ----------------------------------------------------------


class ClipToSpace:
    """PBT's `custom_explore_fn`: keeps perturbed values inside the space.

    Ray's PBT multiplies numeric values by 0.8 or 1.2, which can leave the declared range
    (a dropout of 0.6, a learning rate above the log-uniform bound) and break integer or
    quantized types; this clips and re-quantizes them (normal parameters have no range:
    they are only re-quantized).
    """

    def __init__(self, params: dict[str, Float | Int | Normal]) -> None:
        self.params = params

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for path, param in self.params.items():
            found = find_path(config, path)
            if found is None:
                continue
            node, name = found
            if isinstance(node[name], (int, float)):
                node[name] = _clip(param, node[name])
        return config


def _clip(param: Float | Int | Normal, value: float) -> float | int:
    if isinstance(param, Normal):
        return float(value if param.q is None else round(value / param.q) * param.q)
    value = min(max(value, param.low), param.high)
    if param.q is not None:
        value = round(value / param.q) * param.q
        value = min(max(value, param.low), param.high)
    if isinstance(param, Int):
        return round(value)
    return float(value)


def _population_scheduler(search: SearchSettings, space: Space) -> Any:
    # PB2's module loads scikit-learn: only for a population-based search.
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.schedulers.pb2 import PB2

    options = search.pbt_settings
    numeric = {k: p for k, p in space.searched.items() if isinstance(p, (Float, Int, Normal))}
    if search.algorithm == "pb2":
        bounded = {k: p for k, p in numeric.items() if isinstance(p, (Float, Int))}
        return PB2(
            time_attr=options.time_attr,
            perturbation_interval=options.perturbation_interval,
            # Nested like the config: Ray refuses `/` in a bound's name.
            hyperparam_bounds=nest({k: [p.low, p.high] for k, p in bounded.items()}),
            quantile_fraction=options.quantile_fraction,
            custom_explore_fn=ClipToSpace(numeric),
            synch=options.synch,
        )
    mutations = nest(
        {
            path: list(param.values) if isinstance(param, Choice) else to_tune_domain(param)
            for path, param in space.searched.items()
        }
    )
    return PopulationBasedTraining(
        time_attr=options.time_attr,
        perturbation_interval=options.perturbation_interval,
        burn_in_period=options.burn_in_period,
        hyperparam_mutations=mutations,
        quantile_fraction=options.quantile_fraction,
        resample_probability=options.resample_probability,
        custom_explore_fn=ClipToSpace(numeric),
        synch=options.synch,
    )


def describe_searcher(settings: SearchSettings, *, conditional: bool = False) -> str:
    """A one-line description of the searcher, for `tunefleet validate`.

    Args:
        settings: The validated `search:` section.
        conditional: The space has a choice with parameters per value (random search then
            runs on Optuna's random sampler).
    """
    seed = f"seed {settings.seed}" if settings.seed is not None else "unseeded"
    extra = f", each config x{settings.repeat}" if settings.repeat > 1 else ""
    if settings.time_budget_s is not None:
        extra += f", time budget {settings.time_budget_s:g} s"
    if settings.algorithm == "optuna":
        return f"optuna ({settings.optuna_sampler} sampler, {seed}{extra})"
    if settings.algorithm == "hyperopt":
        return f"hyperopt (TPE, {seed}{extra})"
    if settings.population_based:
        o = settings.pbt_settings
        return (
            f"{settings.algorithm} (population {settings.trials}, perturbation every "
            f"{o.perturbation_interval:g} {o.time_attr}, quantile {o.quantile_fraction:g}; "
            f"initial configs {seed}, perturbations not seedable{extra})"
        )
    if conditional and settings.algorithm == "random":
        return f"random (Optuna's random sampler, for the conditional space; {seed}{extra})"
    return f"{settings.algorithm} (Ray's variant generator, {seed}{extra})"
