"""fANOVA importance of an experiment's searched hyperparameters, through Optuna.

`Experiment.importance` picks the trials and the parameters; this module rebuilds them as an
Optuna study with the distributions the search used and asks Optuna's fANOVA evaluator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import numpy as np
import pandas as pd

from tunefleet.common.logs import quiet_logger
from tunefleet.experiments.analysis.errors import AnalysisError
from tunefleet.search import Choice, Const, Float, Int, Normal, Param, Space
from tunefleet.search.tune_space import to_tune_param_space

__all__ = ["fanova_importance"]

_PRIMITIVE = (str, int, float, bool, type(None))


def fanova_importance(
    rows: pd.DataFrame, params: Mapping[str, Param], column: str, mode: str, seed: int
) -> pd.Series:
    """fANOVA importance (Optuna's evaluator, seeded with `seed`) of `params` for the
    trials in `rows` (`config/<name>` columns) scored by their `column`, in `mode`.

    The rows become an in-memory Optuna study with the distributions Ray's `OptunaSearch`
    would use for the parameters; a row missing a value, or holding one outside its
    distribution, is left out.

    Returns:
        Parameter name -> importance (summing to 1), most important first.

    Raises:
        AnalysisError: If fewer than 2 rows can be used.
    """
    # Optuna loads only for importance (about half a second).
    import optuna

    distributions = _distributions(params, rows)
    frozen = []
    for _, row in rows.iterrows():
        values = {n: _internal(params[n], row[f"config/{n}"]) for n in params}
        if any(v is _MISSING for v in values.values()):
            continue
        try:
            frozen.append(
                optuna.trial.create_trial(
                    value=float(row[column]), params=values, distributions=distributions
                )
            )
        except ValueError:  # a value outside its declared range (edited results, ...)
            continue
    if len(frozen) < 2:
        raise AnalysisError(
            f"importance needs at least 2 trials that reported {column!r} without failing, "
            f"got {len(frozen)}."
        )
    with quiet_logger("optuna"):
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
        study.add_trials(frozen)
        scores = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed)
        )
    out = pd.Series(scores, name="importance", dtype=float).sort_values(ascending=False)
    out.index.name = "param"
    return out


def _distributions(params: Mapping[str, Param], rows: pd.DataFrame) -> dict[str, Any]:
    """The Optuna distributions Ray's `OptunaSearch` builds for these parameters; a normal
    parameter, which has no bounds, spans the values the trials drew."""
    # Ray's Optuna searcher loads Optuna: only when distributions are asked for.
    from ray.tune.search.optuna import OptunaSearch

    sampled: dict[str, Param] = {}
    for n, p in params.items():
        if isinstance(p, Choice) and p.grid:
            p = Choice(p.values)
        elif isinstance(p, Normal):
            drawn = pd.to_numeric(rows[f"config/{n}"], errors="coerce").dropna()
            if drawn.empty:
                raise AnalysisError(f"importance: no trial has a value of {n!r}.")
            p = Float(float(drawn.min()), float(drawn.max()), log=p.log)
        sampled[n] = p
    by_index = [n for n, p in sampled.items() if isinstance(p, Choice) and not _primitive(p)]
    with quiet_logger("ray.tune.search.optuna"):
        converted = OptunaSearch.convert_search_space(
            to_tune_param_space(Space(sampled), by_index=by_index)
        )
    return {n: converted[n] for n in params}


_MISSING = object()


def _internal(param: Param, value: Any) -> Any:
    """A trial's config value as the Optuna distribution holds it (indices for odd choices)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _MISSING
    if isinstance(param, (Float, Normal)):
        return float(value)
    if isinstance(param, Int):
        return int(value)
    if isinstance(param, Choice):
        keys = [_key(v) for v in param.values]
        key = _key(value)
        if key not in keys:
            return _MISSING
        return param.values[keys.index(key)] if _primitive(param) else keys.index(key)
    return _MISSING if isinstance(param, Const) else value


def _primitive(param: Choice) -> bool:
    return all(isinstance(v, _PRIMITIVE) for v in param.values)


def _key(value: Any) -> str:
    """Comparable text for a choice value read back from Parquet (list, array, JSON text)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str) and value[:1] in "[{":
        with suppress(ValueError):
            value = json.loads(value)
    return json.dumps(value, sort_keys=True, default=str)
