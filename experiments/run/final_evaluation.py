"""The final evaluation: the best configs retrained with new seeds, scored on held-out data.

`tunefleet evaluate EXPERIMENT_DIR` (and `tunefleet run` when the spec has `final:`) takes
the `top_k` best trials of `trials.parquet`, retrains each config `seeds` times with seeds
`seed + FINAL_SEED_OFFSET + i` (never a seed the search used) as parallel Ray tasks, each
reserving a trial's resources, and writes `final.parquet`, one row per (config, seed):

- `rank` (0 for the baseline, when the spec has one), `baseline`, `trial_id`, `seed`,
  `search/<metric>` (the trial's best value in the search) and its `config/<param>` values;
- `val_<name>`, `test_<name>`: this retrain's validation and test scores (`<name>` from the
  wrapper's `held_out_metric`, e.g. `accuracy` for `val_accuracy`, `score` for scikit-learn);
- per config, repeated on its rows: `val_mean`, `val_std`, `test_mean`, `test_std` (std with
  ddof=0 across seeds), `gap` (how much validation flatters test: `val_mean - test_mean` for
  `mode: max`, the reverse for `min`) and `overfit` (`gap > final.gap_threshold`).

The test split reaches only these tasks: the search's trainable is built from the training
and validation data alone (see `tunefleet.trainables.contract`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import ray

from tunefleet.cluster import connect
from tunefleet.common.errors import TunefleetError
from tunefleet.common.locations import locate
from tunefleet.common.nesting import nest
from tunefleet.experiments.results.files import FINAL_FILE, SPEC_FILE, TRIALS_FILE, read_baseline
from tunefleet.experiments.results.parquet_io import read_frame, write_parquet_atomic
from tunefleet.experiments.spec.loading import load_spec
from tunefleet.experiments.spec.optional_sections import FINAL_SEED_OFFSET, FinalSettings
from tunefleet.experiments.spec.plan import Plan, make_plan

__all__ = ["FINAL_FILE", "FinalError", "check_final", "evaluate_dir", "run_final"]


class FinalError(TunefleetError, ValueError):
    """The final evaluation cannot run as asked; the message says why and what to do."""


def check_final(plan: Plan) -> None:
    """Raises `FinalError` unless the trainable has a held-out test split to evaluate on."""
    if not plan.trainable.has_test:
        raise FinalError(
            f"final: trainable '{plan.spec.trainable}' has no held-out test split; give "
            "TorchTrainable a `test=` function or SklearnTrainable a `test_size=`, or "
            "remove `final:`."
        )


def _evaluate_one(
    wrapper: Any, config: dict[str, Any], seed: int, cpus: float, gpus: float, workers: int
) -> dict[str, float]:
    # On the device the trials trained on: the task (or, data-parallel, its gang) reserves
    # their GPUs.
    extra = {"workers": workers} if workers > 1 else {}
    scores: dict[str, float] = wrapper.evaluate(config, seed=seed, cpus=cpus, gpus=gpus, **extra)
    return scores


def _python(value: Any) -> Any:
    """A Python value for a numpy scalar read from Parquet (the trainable gets plain types)."""
    return value.item() if isinstance(value, np.generic) else value


def _top_trials(exp_dir: str, metric: str, mode: str, k: int) -> pd.DataFrame:
    trials = read_frame(locate(exp_dir) / TRIALS_FILE)
    best = f"best/{metric}"
    if best not in trials.columns:
        raise FinalError(f"final: no trial in {exp_dir} reported {metric!r}; nothing to evaluate.")
    ok = trials[(trials["status"] != "ERROR") & trials[best].notna()]
    if ok.empty:
        raise FinalError(f"final: no trial in {exp_dir} reported {metric!r}; nothing to evaluate.")
    return ok.sort_values(best, ascending=mode == "min", kind="stable").head(k)


def run_final(plan: Plan, exp_dir: str, settings: FinalSettings | None = None) -> str:
    """Retrains the best configs with new seeds and writes `final.parquet` (Ray must be up).

    Args:
        plan: The experiment's plan (its trainable must pass `check_final`).
        exp_dir: The experiment folder holding `trials.parquet`.
        settings: Overrides the spec's `final:` (default settings if it has none).

    Returns:
        The path of `final.parquet`.

    Raises:
        FinalError: If the trainable has no test split or no trial reported the metric.
    """
    check_final(plan)
    spec = plan.spec
    settings = settings or spec.final or FinalSettings()
    name = plan.trainable.held_out_metric(spec.target_metric)
    entries = _ranked_rows(exp_dir, spec.target_metric, spec.target_mode, settings.top_k)
    retrains = _start_retrains(plan, entries, settings.seeds)
    rows = [_score_row(r, ray.get(r.ref), spec.target_metric, name) for r in retrains]
    table = _summarize(pd.DataFrame(rows), name, spec.target_mode, settings.gap_threshold)
    path = f"{exp_dir}/{FINAL_FILE}"
    info = {
        "metric": spec.target_metric,
        "mode": spec.target_mode,
        "held_out": name,
        "top_k": settings.top_k,
        "seeds": settings.seeds,
        "split": settings.split,
        "gap_threshold": settings.gap_threshold,
    }
    write_parquet_atomic(pa.Table.from_pandas(table, preserve_index=False), path, info)
    return path


@dataclass(frozen=True)
class _Retrain:
    """One retraining under way: a ranked trial's config with one new seed, as a Ray task."""

    rank: int
    row: pd.Series
    flat: dict[str, Any]
    seed: int
    ref: Any


def _ranked_rows(exp_dir: str, metric: str, mode: str, k: int) -> list[tuple[int, pd.Series]]:
    """The `k` best trials ranked from 1, and the baseline as rank 0 when it has the metric
    (scored beside the best)."""
    top = _top_trials(exp_dir, metric, mode, k)
    entries = list(enumerate((row for _, row in top.iterrows()), start=1))
    base_row = read_baseline(exp_dir)
    if base_row is not None and pd.notna(base_row.get(f"best/{metric}")):
        entries.insert(0, (0, base_row))
    return entries


def _start_retrains(plan: Plan, entries: list[tuple[int, pd.Series]], seeds: int) -> list[_Retrain]:
    """Starts `seeds` retrainings of each entry's config as Ray tasks, each reserving a
    trial's resources; seed i of a config is `seed + FINAL_SEED_OFFSET + i`."""
    import ray  # loaded only when a final evaluation runs

    resources = plan.spec.resources
    if resources.workers > 1:
        # The task waits on a gang whose workers reserve `resources.cpu` each, as the
        # trials' did.
        task = ray.remote(_evaluate_one).options(num_cpus=0, memory=1)
        cpus = resources.cpu
    else:
        task = ray.remote(_evaluate_one).options(num_cpus=resources.cpu, num_gpus=resources.gpu)
        cpus = max(1, int(resources.cpu))  # the threads of the one process
    wrapper = ray.put(plan.trainable)
    retrains = []
    for rank, row in entries:
        flat = {
            c.removeprefix("config/"): row[c]
            for c in row.index
            if c.startswith("config/") and _present(row[c])
        }
        config = nest({k: _python(v) for k, v in flat.items()})
        base = int(config.get("seed", 0))
        for i in range(seeds):
            seed = base + FINAL_SEED_OFFSET + i
            ref = task.remote(wrapper, config, seed, cpus, resources.gpu, resources.workers)
            retrains.append(_Retrain(rank=rank, row=row, flat=flat, seed=seed, ref=ref))
    return retrains


def _score_row(
    retrain: _Retrain, scores: dict[str, float], metric: str, name: str
) -> dict[str, Any]:
    """One row of `final.parquet` (before `_summarize` adds the per-config columns)."""
    return {
        "rank": retrain.rank,
        "trial_id": retrain.row["trial_id"],
        "baseline": retrain.rank == 0,
        "seed": retrain.seed,
        f"search/{metric}": float(retrain.row[f"best/{metric}"]),
        f"val_{name}": scores[f"val_{name}"],
        f"test_{name}": scores[f"test_{name}"],
        **{f"config/{k}": v for k, v in retrain.flat.items()},
    }


def _present(value: Any) -> bool:
    return not (value is None or (isinstance(value, float) and np.isnan(value)))


def _summarize(frame: pd.DataFrame, name: str, mode: str, threshold: float) -> pd.DataFrame:
    grouped = frame.groupby("rank")
    for split in ("val", "test"):
        column = f"{split}_{name}"
        frame[f"{split}_mean"] = grouped[column].transform("mean")
        frame[f"{split}_std"] = grouped[column].transform(lambda s: float(np.std(s)))
    sign = 1.0 if mode == "max" else -1.0
    frame["gap"] = sign * (frame["val_mean"] - frame["test_mean"])
    frame["overfit"] = frame["gap"] > threshold
    return frame


def evaluate_dir(
    exp_dir: str,
    *,
    top: int | None = None,
    seeds: int | None = None,
    address: str | None = None,
    verbose: bool = False,
) -> str:
    """`tunefleet evaluate`: the final evaluation of a finished experiment folder.

    Args:
        exp_dir: The experiment folder (with the `spec.yaml` its run saved).
        top: Configs to evaluate (default: the spec's `final.top_k`).
        seeds: Seeds per config (default: the spec's `final.seeds`).
        address: A running Ray cluster to use instead of an embedded Ray.
        verbose: Ray's own logs.

    Returns:
        The path of `final.parquet`.
    """
    location = locate(exp_dir)
    exp_dir = location.uri
    spec_path = f"{exp_dir}/{SPEC_FILE}"
    if not locate(spec_path).is_file():
        why = location.missing() if location.remote else "not found"
        cause = f" ({why})" if why != "not found" else ""
        raise FinalError(
            f"{exp_dir} has no {SPEC_FILE}{cause}; pass the folder a `tunefleet run` wrote "
            "(<storage>/<name>)."
        )
    for flag, value in (("--top", top), ("--seeds", seeds)):
        if value is not None and value < 1:
            raise FinalError(f"{flag}: give a positive number, got {value}.")
    spec, raw = load_spec(spec_path)
    plan = make_plan(spec, raw)
    check_final(plan)
    base = spec.final or FinalSettings()
    update = {k: v for k, v in (("top_k", top), ("seeds", seeds)) if v is not None}
    settings = base.model_copy(update=update)
    with connect(address, verbose=verbose):
        return run_final(plan, exp_dir, settings)
