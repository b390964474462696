"""Search quality: median regret of each searcher on functions with known minima.

Each searcher is built by tunefleet's own construction (`build_search`) and driven in
ask/tell fashion, without a Ray cluster, so the figures measure the search alone. Trials run
one after another, and `parallel` at a time as on a cluster: the searcher has that many
suggestions out, each finishing in the order asked (trials of equal length), and is built
as tunefleet builds it for that many trials at once (Optuna's TPE then counts running
trials as bad results, `constant_liar`; the `optuna-tpe-no-liar` row turns that off):

    python -m benchmarks search --search-trials 100 --search-seeds 5
"""

from __future__ import annotations

import statistics
import time
from collections import deque
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
    "optuna-tpe-no-liar": {
        "algorithm": "optuna",
        "sampler": {"name": "tpe", "constant_liar": False},
    },
    "optuna-cmaes": {"algorithm": "optuna", "sampler": "cmaes"},
    "optuna-gp": {"algorithm": "optuna", "sampler": "gp"},
    "optuna-nsga2": {"algorithm": "optuna", "sampler": {"name": "nsga2", "population_size": 20}},
    "optuna-qmc": {"algorithm": "optuna", "sampler": "qmc"},
    "optuna-random": {"algorithm": "optuna", "sampler": "random"},
}
CHECKPOINTS = (25, 50, 100)


def suggestions(
    settings: SearchSettings, objective: Objective, n_trials: int, parallel: int = 1
) -> list[tuple[dict[str, Any], float]]:
    """Runs `n_trials` suggestions of a searcher on `objective` (minimized), `parallel` of
    them out at a time; returns (config, value) in the order the trials finished."""
    search = build_search(
        settings, FifoSettings(), space=parse_space(objective.space), stop={}, parallel=parallel
    )
    history: list[tuple[dict[str, Any], float]] = []
    if settings.algorithm in ("random", "grid"):
        # Ray's variant generator: the same generator `tune.Tuner` uses for random search.
        rng = np.random.RandomState(settings.seed)
        for _ in range(n_trials):
            config = sample_variant(search.param_space, rng)
            history.append((config, objective(config)))
        return history
    # Independent samples (the variant generator above) do not depend on how many run.
    searcher = search.search_alg
    searcher.set_search_properties("value", "min", search.param_space)
    running: deque[tuple[str, dict[str, Any]]] = deque()
    asked = 0
    while len(history) < n_trials:
        while len(running) < parallel and asked < n_trials:
            running.append((f"t{asked}", searcher.suggest(f"t{asked}")))
            asked += 1
        trial_id, config = running.popleft()
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
    names: Sequence[str],
    functions: Sequence[str],
    n_trials: int,
    seeds: int,
    parallel: Sequence[int] = (1,),
) -> list[dict[str, Any]]:
    """Median regret at each checkpoint, for each function, searcher and trials at once."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for fname in functions:
        objective = FUNCTIONS[fname]
        for name in names:
            for at_once in parallel:
                curves, started = [], time.perf_counter()
                for seed in range(seeds):
                    settings = SearchSettings(**SEARCHERS[name], seed=seed)
                    history = suggestions(settings, objective, n_trials, parallel=at_once)
                    curves.append(regret_curve([v for _, v in history], objective.minimum))
                row: dict[str, Any] = {"function": fname, "searcher": name, "parallel": at_once}
                for n in (c for c in CHECKPOINTS if c <= n_trials):
                    row[f"regret@{n}"] = statistics.median(c[n - 1] for c in curves)
                row["seconds"] = time.perf_counter() - started
                rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], seeds: int) -> str:
    """The results as a markdown table."""
    keys = [k for k in rows[0] if k.startswith("regret@")]
    regret = " | ".join(f"median {k}" for k in keys)
    head = f"| function | searcher | trials at once | {regret} | seconds |"
    lines = [head, "|" + " --- |" * (len(keys) + 4)]
    for r in rows:
        cells = " | ".join(f"{r[k]:.4f}" for k in keys)
        lines.append(
            f"| {r['function']} | {r['searcher']} | {r.get('parallel', 1)} | {cells} "
            f"| {r['seconds']:.1f} |"
        )
    lines.append(
        f"\n(median over {seeds} seeds; regret = best value found - known minimum, counting "
        "trials in the order they finished)"
    )
    return "\n".join(lines)
