"""Search quality: median regret of each searcher on functions with known minima.

Each searcher is built by tunefleet's own construction (`build_search`) and driven in
ask/tell fashion, without a Ray cluster, so the figures measure the search alone:

    python -m benchmarks search --trials 100 --seeds 5
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.functions import FUNCTIONS, Objective
from tunefleet.common.ray_compat import sample_variant
from tunefleet.search import FifoSettings, SearchSettings, parse_space
from tunefleet.search.algorithms import build_search

__all__ = ["SEARCHERS", "regret_curve", "run", "suggestions"]

# name -> search settings (the seed is set per run)
SEARCHERS: dict[str, dict[str, Any]] = {
    "random": {"algorithm": "random"},
    "hyperopt": {"algorithm": "hyperopt"},
    "optuna-tpe": {"algorithm": "optuna", "sampler": "tpe"},
    "optuna-cmaes": {"algorithm": "optuna", "sampler": "cmaes"},
    "optuna-gp": {"algorithm": "optuna", "sampler": "gp"},
    "optuna-nsga2": {"algorithm": "optuna", "sampler": {"name": "nsga2", "population_size": 20}},
    "optuna-qmc": {"algorithm": "optuna", "sampler": "qmc"},
    "optuna-random": {"algorithm": "optuna", "sampler": "random"},
}
CHECKPOINTS = (25, 50, 100)


def suggestions(
    settings: SearchSettings, objective: Objective, n_trials: int
) -> list[tuple[dict[str, Any], float]]:
    """Runs `n_trials` sequential suggestions of a searcher on `objective` (minimized)."""
    search = build_search(settings, FifoSettings(), space=parse_space(objective.space), stop={})
    history: list[tuple[dict[str, Any], float]] = []
    if settings.algorithm in ("random", "grid"):
        # Ray's variant generator: the same generator `tune.Tuner` uses for random search.
        rng = np.random.RandomState(settings.seed)
        for _ in range(n_trials):
            config = sample_variant(search.param_space, rng)
            history.append((config, objective(config)))
        return history
    searcher = search.search_alg
    searcher.set_search_properties("value", "min", search.param_space)
    for i in range(n_trials):
        trial_id = f"t{i}"
        config = searcher.suggest(trial_id)
        value = objective(config)
        searcher.on_trial_complete(trial_id, {"value": value, **config})
        history.append((config, value))
    return history


def regret_curve(values: Sequence[float], minimum: float) -> list[float]:
    """Best-so-far minus the known minimum, after each trial."""
    best, curve = float("inf"), []
    for v in values:
        best = min(best, v)
        curve.append(best - minimum)
    return curve


def run(
    names: Sequence[str], functions: Sequence[str], n_trials: int, seeds: int
) -> list[dict[str, Any]]:
    """Median regret at each checkpoint, for each searcher and function."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for fname in functions:
        objective = FUNCTIONS[fname]
        for name in names:
            curves, started = [], time.perf_counter()
            for seed in range(seeds):
                settings = SearchSettings(**SEARCHERS[name], seed=seed)
                values = [v for _, v in suggestions(settings, objective, n_trials)]
                curves.append(regret_curve(values, objective.minimum))
            row: dict[str, Any] = {"function": fname, "searcher": name}
            for n in (c for c in CHECKPOINTS if c <= n_trials):
                row[f"regret@{n}"] = statistics.median(c[n - 1] for c in curves)
            row["seconds"] = time.perf_counter() - started
            rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], seeds: int) -> str:
    """The results as a markdown table."""
    keys = [k for k in rows[0] if k.startswith("regret@")]
    head = "| function | searcher | " + " | ".join(f"median {k}" for k in keys) + " | seconds |"
    lines = [head, "|" + " --- |" * (len(keys) + 3)]
    for r in rows:
        cells = " | ".join(f"{r[k]:.4f}" for k in keys)
        lines.append(f"| {r['function']} | {r['searcher']} | {cells} | {r['seconds']:.1f} |")
    lines.append(f"\n(median over {seeds} seeds; regret = best value found - known minimum)")
    return "\n".join(lines)
