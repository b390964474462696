"""The baseline: one reference trial run before the search, so every result has a yardstick.

With `baseline:` in the spec, `tunefleet run` first runs a single trial of the trainable on
the space's constants plus `baseline.config` (searched parameters left out fall back to the
trainable's own defaults: `baseline: defaults` is the library's default configuration, e.g.
scikit-learn's estimator defaults or the PyTorch wrapper's loop defaults). It runs as its own
one-trial Ray Tune experiment in `<experiment>/baseline/`, with the same files as any
experiment (`trials.parquet`, `iterations.parquet`), so the search's own files, searcher
state and budgets hold the search alone and the baseline can never be mistaken for a
searched trial. `tunefleet show` and `tunefleet report` state the best trial's improvement
over it, and the final evaluation scores it on the test split beside the best configs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tunefleet.experiments.plan import Plan
from tunefleet.experiments.sections import BaselineSettings
from tunefleet.experiments.tables import flatten
from tunefleet.search.space import Const, Space
from tunefleet.search.tune_space import nest

__all__ = [
    "BASELINE_DIR",
    "baseline_config",
    "baseline_text",
    "improvement",
    "read_baseline",
    "run_baseline",
]

BASELINE_DIR = "baseline"


def baseline_config(space: Space, baseline: BaselineSettings) -> dict[str, Any]:
    """The baseline trial's nested config: the space's constants and `baseline.config`."""
    flat = {k: p.value for k, p in space.params.items() if isinstance(p, Const)}
    flat.update(flatten(baseline.config))
    return nest(flat)


def run_baseline(plan: Plan, exp_dir: str, *, verbose: bool) -> str:
    """Runs the baseline trial into `<exp_dir>/baseline/` (Ray must be up); returns the path.

    Raises:
        ValueError: If the spec has no `baseline:`.
    """
    from ray import tune

    from tunefleet.experiments.results import ResultsRecorder
    from tunefleet.experiments.runner import _quiet_tune, _tune_trainable, trial_dirname

    spec = plan.spec
    if spec.baseline is None:
        raise ValueError("the spec has no `baseline:` section.")
    path = f"{exp_dir}/{BASELINE_DIR}"
    recorder = ResultsRecorder(
        path,
        metric=spec.target_metric,
        mode=spec.target_mode,
        info={"experiment": BASELINE_DIR, "spec": plan.raw, "baseline": True},
    )
    tuner = tune.Tuner(
        _tune_trainable(plan),
        param_space=baseline_config(spec.space, spec.baseline),
        tune_config=tune.TuneConfig(
            metric=spec.target_metric,
            mode=spec.target_mode,
            num_samples=1,
            reuse_actors=True,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=BASELINE_DIR,
            storage_path=exp_dir,
            stop=dict(spec.stop) or None,
            callbacks=[recorder],
            verbose=2 if verbose else 0,
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
        ),
    )
    try:
        with _quiet_tune(verbose, spec.results.flush_every_s):
            tuner.fit()
    finally:
        recorder.flush()
    return path


def read_baseline(exp_dir: str | Path) -> pd.Series | None:
    """The baseline trial's row of `<exp_dir>/baseline/trials.parquet`, or None."""
    path = Path(exp_dir) / BASELINE_DIR / "trials.parquet"
    if not path.is_file():
        return None
    trials = pd.read_parquet(path)
    return None if trials.empty else trials.iloc[0]


def improvement(best: float, base: float, mode: str) -> tuple[float, float | None]:
    """How much `best` improves on `base`: the difference (positive is better for either
    mode) and the relative change (None when `base` is 0)."""
    diff = best - base if mode == "max" else base - best
    return diff, (diff / abs(base) if base else None)


def baseline_text(exp_dir: str | Path, *, metric: str, mode: str, best: float | None) -> str | None:
    """One line: the baseline's value and the best trial's improvement over it, or None."""
    row = read_baseline(exp_dir)
    if row is None:
        return None
    value = row.get(f"best/{metric}")
    if value is None or pd.isna(value):
        return f"baseline: no {metric} reported (status {row.get('status')})."
    text = f"baseline {metric} = {value:.4g} (trial {row['trial_id']})"
    if best is None:
        return text
    diff, relative = improvement(float(best), float(value), mode)
    rel = f", {relative:+.1%}" if relative is not None else ""
    return f"{text}; best improves on it by {diff:+.4g}{rel}"
