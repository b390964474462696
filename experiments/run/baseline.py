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

from typing import Any

from ray import tune

from tunefleet.common import startup
from tunefleet.common.nesting import flatten, nest
from tunefleet.experiments.results.files import BASELINE_DIR
from tunefleet.experiments.results.recorder import ResultsRecorder
from tunefleet.experiments.run.tune_setup import (
    quiet_reporter,
    quiet_tune,
    reuse_actors,
    trial_dirname,
    tune_trainable,
)
from tunefleet.experiments.spec.optional_sections import BaselineSettings
from tunefleet.experiments.spec.plan import Plan
from tunefleet.search.space import Const, Space

__all__ = ["baseline_config", "run_baseline"]


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
        tune_trainable(plan),
        param_space=baseline_config(spec.space, spec.baseline),
        tune_config=tune.TuneConfig(
            metric=spec.target_metric,
            mode=spec.target_mode,
            num_samples=1,
            reuse_actors=reuse_actors(plan),
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=BASELINE_DIR,
            storage_path=exp_dir,
            stop=dict(spec.stop) or None,
            callbacks=[recorder],
            verbose=2 if verbose else 0,
            progress_reporter=quiet_reporter(verbose),
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
        ),
    )
    try:
        with quiet_tune(verbose, spec.results.flush_every_s):
            startup.resume()  # the collector runs for every fit (`tunefleet.common.startup`)
            tuner.fit()
    finally:
        recorder.flush()
    return path
