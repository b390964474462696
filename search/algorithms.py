"""Builds the Ray Tune searcher named by a spec's `search:` section.

Every searcher is Ray Tune's own (`BasicVariantGenerator`, `HyperOptSearch`, `OptunaSearch`
around Optuna's own samplers); this module only chooses and seeds them.
"""

from __future__ import annotations

from typing import Any

from tunefleet.search.settings import SearchSettings

__all__ = ["build_searcher", "describe_searcher"]


def build_searcher(settings: SearchSettings) -> Any:
    """Returns the Ray Tune search algorithm for `settings`.

    The metric, mode and search space are not given here: `tune.TuneConfig` and the Tuner's
    `param_space` hand them to the searcher, which converts the space for its backend.

    Args:
        settings: The validated `search:` section.

    Returns:
        A `ray.tune.search.Searcher` or `BasicVariantGenerator`.
    """
    points = [_nest(p) for p in settings.points_to_evaluate] or None
    if settings.algorithm in ("random", "grid"):
        from ray.tune.search.basic_variant import BasicVariantGenerator

        return BasicVariantGenerator(points_to_evaluate=points, random_state=settings.seed)
    if settings.algorithm == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        kwargs: dict[str, Any] = {}
        if settings.n_initial_points is not None:
            kwargs["n_initial_points"] = settings.n_initial_points
        return HyperOptSearch(
            points_to_evaluate=points,
            random_state_seed=settings.seed,
            **kwargs,
        )
    if settings.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(
            points_to_evaluate=points,
            sampler=_optuna_sampler(settings),
        )
    raise ValueError(f"unknown search algorithm {settings.algorithm!r}")


def _nest(point: dict[str, Any]) -> dict[str, Any]:
    """Ray wants nested configs: `{"model/depth": 2}` becomes `{"model": {"depth": 2}}`."""
    nested: dict[str, Any] = {}
    for key, value in point.items():
        *groups, name = key.split("/")
        node = nested
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value
    return nested


def _optuna_sampler(settings: SearchSettings) -> Any:
    import optuna

    name = settings.optuna_sampler
    if name == "tpe":
        kwargs: dict[str, Any] = {"seed": settings.seed}
        if settings.n_initial_points is not None:
            kwargs["n_startup_trials"] = settings.n_initial_points
        return optuna.samplers.TPESampler(**kwargs)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    raise ValueError(f"unknown Optuna sampler {name!r}")


def describe_searcher(settings: SearchSettings) -> str:
    """A one-line description of the searcher, for `tunefleet validate`."""
    seed = f"seed {settings.seed}" if settings.seed is not None else "unseeded"
    if settings.algorithm == "optuna":
        return f"optuna ({settings.optuna_sampler} sampler, {seed})"
    if settings.algorithm == "hyperopt":
        return f"hyperopt (TPE, {seed})"
    return f"{settings.algorithm} (Ray's variant generator, {seed})"
