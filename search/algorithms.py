"""Builds the Ray Tune search algorithm and scheduler a spec asks for.

Every piece is Ray Tune's, Optuna's or Hyperopt's own (`BasicVariantGenerator`,
`HyperOptSearch`, `OptunaSearch` around Optuna's samplers, `Repeater`,
`PopulationBasedTraining`, `PB2`); this module only chooses, configures and seeds them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from tunefleet.search.schedulers import AnyScheduler, build_scheduler
from tunefleet.search.settings import SearchSettings
from tunefleet.search.space import Choice, Const, Float, Int, Space
from tunefleet.search.tune_space import nest, to_tune_domain, to_tune_param_space
from tunefleet.search.typed_choices import DecodeChoices, encode_point, encoded_choices
from tunefleet.search.wrapping import FiniteTarget

__all__ = [
    "TuneSearch",
    "build_search",
    "build_searcher",
    "describe_searcher",
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
    mode: str | list[str] | None = None,
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
        from ray.tune.search.basic_variant import BasicVariantGenerator

        return TuneSearch(
            search_alg=BasicVariantGenerator(
                max_concurrent=search.max_concurrent or 0, random_state=search.seed
            ),
            scheduler=_population_scheduler(search, space),
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
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # Ray applies `TuneConfig.max_concurrent_trials` only to a `Searcher` (through a
        # ConcurrencyLimiter); this generator is not one, so it must carry the cap itself.
        return BasicVariantGenerator(
            points_to_evaluate=points,
            max_concurrent=settings.max_concurrent or 0,
            random_state=settings.seed,
        )
    if algorithm == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        kwargs: dict[str, Any] = {}
        if settings.n_initial_points is not None:
            kwargs["n_initial_points"] = settings.n_initial_points
        searcher: Any = HyperOptSearch(
            points_to_evaluate=points, random_state_seed=settings.seed, **kwargs
        )
    elif algorithm in ("optuna", "optuna-random"):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler = (
            optuna.samplers.RandomSampler(seed=settings.seed)
            if algorithm == "optuna-random"
            else _optuna_sampler(settings, parallel=parallel)
        )
        objectives: dict[str, Any] = {}
        if isinstance(metric, list):
            objectives = {"metric": list(metric), "mode": list(mode or [])}
        searcher = OptunaSearch(points_to_evaluate=points, sampler=sampler, **objectives)
    else:
        raise ValueError(f"not a searcher: {algorithm!r}")
    # NaN, infinite or missing values of the target reach the backend as failed trials.
    searcher = FiniteTarget(searcher)
    if choices:
        searcher = DecodeChoices(searcher, choices)
    if settings.repeat > 1:
        from ray.tune.search import Repeater

        searcher = Repeater(searcher, repeat=settings.repeat, set_index=True)
    return searcher


def _conditional_searcher(
    settings: SearchSettings,
    space: Space,
    metric: str | list[str],
    mode: str | list[str],
    parallel: int,
) -> Any:
    """Hyperopt with nested `hp.choice`, or Optuna define-by-run (random search: Optuna's
    random sampler), built with their own space and wrapped to decode suggestions."""
    from tunefleet.search.conditional import ConditionalSearcher, DefineByRun, hyperopt_space

    searcher: Any
    if settings.algorithm == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        kwargs: dict[str, Any] = {}
        if settings.n_initial_points is not None:
            kwargs["n_initial_points"] = settings.n_initial_points
        searcher = HyperOptSearch(
            space=hyperopt_space(space),
            metric=metric,  # type: ignore[arg-type]
            mode=mode,  # type: ignore[arg-type]
            random_state_seed=settings.seed,
            **kwargs,
        )
    else:
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler = (
            optuna.samplers.RandomSampler(seed=settings.seed)
            if settings.algorithm == "random"
            else _optuna_sampler(settings, conditional=True, parallel=parallel)
        )
        searcher = OptunaSearch(space=DefineByRun(space), metric=metric, mode=mode, sampler=sampler)
    # NaN, infinite or missing values of the target reach the backend as failed trials.
    searcher = ConditionalSearcher(FiniteTarget(searcher), space)
    if settings.repeat > 1:
        from ray.tune.search import Repeater

        searcher = Repeater(searcher, repeat=settings.repeat, set_index=True)
    return searcher


def _optuna_sampler(
    settings: SearchSettings, *, conditional: bool = False, parallel: int = 1
) -> Any:
    import optuna

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
    import optuna

    samplers = optuna.samplers
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
    quantized types; this clips and re-quantizes them.
    """

    def __init__(self, params: dict[str, Float | Int]) -> None:
        self.params = params

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        for path, param in self.params.items():
            *groups, name = path.split("/")
            node = config
            for group in groups:
                node = node.get(group, {})
            if name in node and isinstance(node[name], (int, float)):
                node[name] = _clip(param, node[name])
        return config


def _clip(param: Float | Int, value: float) -> float | int:
    value = min(max(value, param.low), param.high)
    if param.q is not None:
        value = round(value / param.q) * param.q
        value = min(max(value, param.low), param.high)
    if isinstance(param, Int):
        return round(value)
    return float(value)


def _population_scheduler(search: SearchSettings, space: Space) -> Any:
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.schedulers.pb2 import PB2

    options = search.pbt_settings
    numeric = {k: p for k, p in space.searched.items() if isinstance(p, (Float, Int))}
    if search.algorithm == "pb2":
        return PB2(
            time_attr=options.time_attr,
            perturbation_interval=options.perturbation_interval,
            # Nested like the config: Ray refuses `/` in a bound's name.
            hyperparam_bounds=nest({k: [p.low, p.high] for k, p in numeric.items()}),
            quantile_fraction=options.quantile_fraction,
            custom_explore_fn=ClipToSpace(numeric),
            synch=options.synch,
        )
    mutations: dict[str, Any] = {}
    for path, param in space.searched.items():
        value = list(param.values) if isinstance(param, Choice) else to_tune_domain(param)
        *groups, name = path.split("/")
        node = mutations
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
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
