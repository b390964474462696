"""One experiment's Parquet results as Optuna trials, for optuna-dashboard.

Each row of `trials.parquet` becomes one Optuna trial, numbered in the order Ray created
the trials:

- params: the searched hyperparameters, each with the Optuna distribution of its entry in
  the spec's space (uniform and loguniform: `FloatDistribution`; randint, inclusive like the
  spec: `IntDistribution`; choice and grid: `CategoricalDistribution`, values that are not
  plain scalars as JSON text). A conditional choice's branch parameters appear only in the
  trials that drew that branch. Bounds widen to hold every value seen (PBT perturbs beyond
  the spec's range). Without a spec, each distribution spans the values seen.
- state: `TERMINATED` -> COMPLETE (FAIL when the target metric is unusable), `ERROR` -> FAIL,
  `RUNNING` and `PAUSED` -> RUNNING, `PENDING` -> WAITING.
- value: `best/<metric>`, the number `tunefleet show` ranks by; multi-objective: each
  metric's last value (what the searcher was told, and what the `pareto` column uses).
- intermediate values: the target metric at each `training_iteration` (learning curves).
- start and end: the first result's time less its `time_total_s`, and the last result's time
  (a trial that reported nothing: when the results first listed it).
- user attributes: `trial_id`, Ray's `status`, `iterations`, `time_total_s`, `node_ip`,
  `node_id`, `error`, `invalid_metric`, the last value of every reported metric, values
  that fit no distribution as `config/<param>`, and for PBT and PB2 the `config_changes`
  of each exploit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from tunefleet.experiments.analysis.experiment import Experiment
from tunefleet.search import Choice, Conditional, Const, Float, Int, Param, Space

__all__ = ["STATES", "objectives", "optuna_trials"]

# Ray's trial status -> Optuna's state (TERMINATED without a usable value: FAIL).
STATES = {
    "TERMINATED": TrialState.COMPLETE,
    "ERROR": TrialState.FAIL,
    "RUNNING": TrialState.RUNNING,
    "PAUSED": TrialState.RUNNING,
    "PENDING": TrialState.WAITING,
}
# Columns of trials.parquet shown as attributes of each trial, besides the metrics.
_ATTRS = (
    "trial_id", "status", "iterations", "time_total_s", "node_ip", "node_id", "error",
    "invalid_metric",
)  # fmt: skip
# Columns of trials.parquet that are not reported metrics (nor config/ or best/ columns).
_NOT_METRICS = frozenset({*_ATTRS, "pareto", "experiment"})
_SCALARS = (str, int, float, bool, type(None))


def objectives(exp: Experiment) -> list[tuple[str, str]]:
    """(metric, mode) of each objective: the spec's list for a multi-objective experiment,
    else the target metric alone."""
    spec = exp.metadata.get("spec") or {}
    metric, mode = spec.get("metric"), spec.get("mode")
    if isinstance(metric, list) and isinstance(mode, list) and len(metric) == len(mode) > 1:
        return [(str(m), str(d)) for m, d in zip(metric, mode, strict=True)]
    return [(exp.metric, exp.mode)]


def optuna_trials(
    exp: Experiment, trial_id: Callable[[str], int], first_seen: MutableMapping[str, float]
) -> list[FrozenTrial]:
    """The experiment's trials as Optuna trials, in `trials.parquet` order.

    Args:
        exp: The experiment's results.
        trial_id: The Optuna trial id to give the trial of a tunefleet `trial_id`.
        first_seen: tunefleet `trial_id` -> Unix time the results first listed it, the
            start time of a trial that has not reported yet; entries are added here.
    """
    rows = [{k: _plain(v) for k, v in row.items()} for row in exp.trials.to_dict("records")]
    targets = objectives(exp)
    space = exp.space
    if space is None:  # a plain Ray Tune run, exported: the distributions of the values seen
        space = _observed_space(exp.trials)
    params = [dict(_searched(space, row)) for row in rows]
    fits = _fits(rows, params)
    curves = _curves(exp.iterations, exp.metric)
    times = _times(exp.iterations)
    changes = _config_changes(exp.exploits)
    metrics = [
        c
        for c in exp.trials.columns
        if c not in _NOT_METRICS and not c.startswith(("config/", "best/"))
    ]
    now = float(exp.metadata.get("written_at") or datetime.now().timestamp())
    out = []
    for number, (row, searched) in enumerate(zip(rows, params, strict=True)):
        name = str(row["trial_id"])
        chosen, distributions, misfits = _params(row, searched, fits)
        attrs = {k: row.get(k) for k in (*_ATTRS, *metrics)} | misfits
        if name in changes:
            attrs["config_changes"] = changes[name]
        values = _values(row, targets, exp.best_column)
        state = STATES.get(str(row.get("status")), TrialState.RUNNING)
        if state == TrialState.COMPLETE and values is None:
            state = TrialState.FAIL
        start, end = times.get(name) or (first_seen.setdefault(name, now),) * 2
        out.append(
            FrozenTrial(
                number=number,
                state=state,
                value=None,
                values=values if state == TrialState.COMPLETE else None,
                datetime_start=None if state == TrialState.WAITING else _when(start),
                datetime_complete=_when(max(start, end)) if state.is_finished() else None,
                params=chosen,
                distributions=distributions,
                user_attrs={k: v for k, v in attrs.items() if _present(v)},
                system_attrs={},
                intermediate_values=curves.get(name, {}),
                trial_id=trial_id(name),
            )
        )
    return out


# Parameters and their distributions --------------------------------------------------


def _searched(space: Space, row: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(config path, parameter) of each searched parameter the trial has: the unconditional
    ones, and the branch parameters of each conditional value it drew."""
    for path, param in space.params.items():
        if isinstance(param, Const):
            continue
        full = prefix + path
        yield full, param
        if isinstance(param, Conditional):
            drawn = row.get(f"config/{full}")
            names = [str(v) for v in param.values]
            if drawn is not None and str(drawn) in names:
                group = full.rpartition("/")[0]
                branch = param.branches[names.index(str(drawn))]
                yield from _searched(branch, row, f"{group}/" if group else "")


@dataclass(frozen=True)
class _Fit:
    """A parameter's Optuna distribution, shared by every trial that has the parameter (the
    dashboard's contour and importance plots need one distribution per name)."""

    distribution: BaseDistribution
    choices: Mapping[str, Any]  # categorical: comparable text of each choice -> the choice

    def internal(self, value: Any) -> tuple[bool, Any]:
        """(True, the value as the distribution holds it), or (False, value) if it does not
        fit (a choice that is not in the spec's list)."""
        if value is None:
            return False, value
        if isinstance(self.distribution, CategoricalDistribution):
            key = _key(value)
            if key not in self.choices and isinstance(value, str):
                key = _key(_loads(value))  # a column of mixed types holds JSON text
            return (True, self.choices[key]) if key in self.choices else (False, value)
        if not _number(value):
            return False, value
        if isinstance(self.distribution, IntDistribution):
            return (True, int(value)) if float(value).is_integer() else (False, value)
        return True, float(value)


def _params(
    row: Mapping[str, Any], searched: Mapping[str, Param], fits: Mapping[tuple[str, int], Any]
) -> tuple[dict[str, Any], dict[str, BaseDistribution], dict[str, Any]]:
    """The trial's params and their distributions, and as `config/<path>` the values that
    fit no distribution."""
    params, distributions, misfits = {}, {}, {}
    for path, param in searched.items():
        raw, fit = row.get(f"config/{path}"), fits[path, id(param)]
        fits_in, value = fit.internal(raw) if fit is not None else (False, raw)
        if fits_in:
            params[path], distributions[path] = value, fit.distribution
        else:
            misfits[f"config/{path}"] = raw
    return params, distributions, misfits


def _fits(
    rows: Sequence[Mapping[str, Any]], params: Sequence[Mapping[str, Param]]
) -> dict[tuple[str, int], _Fit | None]:
    """The distribution of each (path, parameter), spanning every value a trial has."""
    seen: dict[tuple[str, int], tuple[Param, list[Any]]] = {}
    for row, searched in zip(rows, params, strict=True):
        for path, param in searched.items():
            value = row.get(f"config/{path}")
            seen.setdefault((path, id(param)), (param, []))[1].append(value)
    return {key: _fit(param, values) for key, (param, values) in seen.items()}


def _fit(param: Param, values: list[Any]) -> _Fit | None:
    if isinstance(param, Choice):
        choices = tuple(_choice(v) for v in param.values)
        return _Fit(CategoricalDistribution(choices), {_key(c): c for c in choices})
    if not isinstance(param, (Float, Int)):
        return None
    numbers = [float(v) for v in values if _number(v)]
    low, high = min([param.low, *numbers]), max([param.high, *numbers])
    log = param.log and low > 0
    step = param.q if not log and all(_on_grid(v, low, param.q) for v in numbers) else None
    if isinstance(param, Int):
        dist: BaseDistribution = IntDistribution(
            math.floor(low), math.ceil(high), log=log, step=int(step or 1)
        )
    else:
        dist = FloatDistribution(low, high, log=log, step=step)
    return _Fit(dist, {})


def _on_grid(value: float, low: float, step: float | None) -> bool:
    """Whether `value` is `low` plus a whole number of steps (Optuna's own tolerance)."""
    if step is None:
        return False
    k = (value - low) / step
    return abs(k - round(k)) < 1e-8


def _observed_space(trials: pd.DataFrame) -> Space:
    """Without a spec: every config column that varies, as the range or the set of its
    values."""
    params: dict[str, Param] = {}
    for column in trials.columns:
        if not column.startswith("config/"):
            continue
        values = [v for v in map(_plain, trials[column]) if v is not None]
        distinct = list(dict.fromkeys(_choice(v) for v in values))
        if len(distinct) < 2:
            continue
        name = column.removeprefix("config/")
        if all(_number(v) for v in values):
            low, high = min(map(float, values)), max(map(float, values))
            integral = all(isinstance(v, int) for v in values)
            params[name] = Int(int(low), int(high)) if integral else Float(low, high)
        else:
            params[name] = Choice(tuple(distinct))
    return Space(params)


def _choice(value: Any) -> Any:
    """A choice as Optuna holds it: scalars as they are, lists and mappings as JSON text."""
    return value if isinstance(value, _SCALARS) else json.dumps(value, sort_keys=True)


def _key(value: Any) -> str:
    """Comparable text for a value (lists as read back from Parquet, choices as JSON text)."""
    if isinstance(value, str) and value[:1] in "[{":
        value = _loads(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, default=str)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# Values, curves, times, exploits -------------------------------------------------------


def _values(
    row: Mapping[str, Any], targets: Sequence[tuple[str, str]], best: str
) -> list[float] | None:
    columns = [best] if len(targets) == 1 else [metric for metric, _ in targets]
    values = [_float(row.get(c)) for c in columns]
    if any(v is None or math.isnan(v) for v in values):
        return None
    return [float(v) for v in values if v is not None]


def _curves(iterations: pd.DataFrame, metric: str) -> dict[str, dict[int, float]]:
    """trial_id -> {training_iteration: value of the metric} (numbers only)."""
    if metric not in iterations.columns:
        return {}
    frame = pd.DataFrame(
        {
            "trial": iterations["trial_id"].astype(str),
            "step": pd.to_numeric(iterations["training_iteration"], errors="coerce"),
            "value": pd.to_numeric(iterations[metric], errors="coerce"),
        }
    ).dropna()
    curves: dict[str, dict[int, float]] = {}
    for trial, step, value in zip(
        frame["trial"].tolist(), frame["step"].astype(int).tolist(), frame["value"].tolist(),
        strict=True,
    ):  # fmt: skip
        curves.setdefault(trial, {})[step] = value
    return curves


def _times(iterations: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """trial_id -> (start, last result) as Unix times."""
    if iterations.empty or "timestamp" not in iterations.columns:
        return {}
    frame = iterations[["trial_id", "timestamp"]].copy()
    frame["timestamp"] = pd.to_numeric(frame["timestamp"], errors="coerce")
    total = iterations.get("time_total_s", pd.Series(0.0, index=iterations.index))
    frame["start"] = frame["timestamp"] - pd.to_numeric(total, errors="coerce").fillna(0.0)
    grouped = frame.dropna().groupby("trial_id", sort=False)
    start, end = grouped["start"].first(), grouped["timestamp"].max()
    return {
        str(t): (float(min(s, e)), float(e))
        for t, s, e in zip(start.index, start, end.reindex(start.index), strict=True)
    }


def _config_changes(exploits: pd.DataFrame | None) -> dict[str, list[str]]:
    """trial_id -> one line per exploit: `iteration 4: copied <trial> (iteration 4); lr: ...`."""
    if exploits is None or exploits.empty:
        return {}
    out: dict[str, list[str]] = {}
    for row in exploits.to_dict("records"):
        line = (
            f"iteration {_plain(row.get('training_iteration'))}: copied "
            f"{row.get('cloned_from')} (iteration {_plain(row.get('cloned_iteration'))})"
        )
        if row.get("changed"):
            line += f"; {row['changed']}"
        out.setdefault(str(row.get("trial_id")), []).append(line)
    return out


# Small conversions ---------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value read from Parquet as plain Python (None for nulls and NaN)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return value
    if kind is float:
        return None if math.isnan(value) else value
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _when(unix: float) -> datetime:
    return datetime.fromtimestamp(unix)
