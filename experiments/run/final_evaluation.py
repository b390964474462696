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
and validation data alone (see `tunefleet.trainables.held_out`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tunefleet.common.locations import locate
from tunefleet.experiments.results.files import FINAL_FILE, SPEC_FILE, TRIALS_FILE, read_baseline
from tunefleet.experiments.results.parquet_io import read_frame, write_parquet_atomic
from tunefleet.experiments.spec.optional_sections import FINAL_SEED_OFFSET, FinalSettings
from tunefleet.experiments.spec.plan import Plan

__all__ = ["FINAL_FILE", "FinalError", "check_final", "evaluate_dir", "run_final"]


class FinalError(ValueError):
    """The final evaluation cannot run as asked; the message says why and what to do."""


def check_final(plan: Plan) -> None:
    """Raises `FinalError` unless the trainable has a held-out test split to evaluate on."""
    obj = plan.trainable
    if not callable(getattr(obj, "evaluate", None)) or not getattr(obj, "has_test", False):
        raise FinalError(
            f"final: trainable '{plan.spec.trainable}' has no held-out test split; give "
            "TorchTrainable a `test=` function or SklearnTrainable a `test_size=`, or "
            "remove `final:`."
        )


def _evaluate_one(wrapper: Any, config: dict[str, Any], seed: int, cpus: int) -> dict[str, float]:
    scores: dict[str, float] = wrapper.evaluate(config, seed=seed, cpus=cpus)
    return scores


def _unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for path, value in flat.items():
        *groups, name = path.split("/")
        node = config
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = value.item() if isinstance(value, np.generic) else value
    return config


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
    import ray

    check_final(plan)
    spec = plan.spec
    settings = settings or spec.final or FinalSettings()
    top = _top_trials(exp_dir, spec.target_metric, spec.target_mode, settings.top_k)
    entries = list(enumerate((row for _, row in top.iterrows()), start=1))

    base_row = read_baseline(exp_dir)
    if base_row is not None and pd.notna(base_row.get(f"best/{spec.target_metric}")):
        entries.insert(0, (0, base_row))  # rank 0: the baseline, scored beside the best
    name = plan.trainable.held_out_metric(spec.target_metric)
    cpus = max(1, int(spec.resources.cpu))
    task = ray.remote(_evaluate_one).options(
        num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu
    )
    wrapper = ray.put(plan.trainable)
    jobs = []
    for rank, row in entries:
        flat = {
            c.removeprefix("config/"): row[c]
            for c in row.index
            if c.startswith("config/") and _present(row[c])
        }
        config = _unflatten(flat)
        base = int(config.get("seed", 0))
        for i in range(settings.seeds):
            seed = base + FINAL_SEED_OFFSET + i
            jobs.append((rank, row, flat, seed, task.remote(wrapper, config, seed, cpus)))
    rows = []
    for rank, row, flat, seed, ref in jobs:
        scores = ray.get(ref)
        rows.append(
            {
                "rank": rank,
                "trial_id": row["trial_id"],
                "baseline": rank == 0,
                "seed": seed,
                f"search/{spec.target_metric}": float(row[f"best/{spec.target_metric}"]),
                f"val_{name}": scores[f"val_{name}"],
                f"test_{name}": scores[f"test_{name}"],
                **{f"config/{k}": v for k, v in flat.items()},
            }
        )
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
    from tunefleet.cluster import connect
    from tunefleet.experiments.spec.loading import load_spec
    from tunefleet.experiments.spec.plan import make_plan

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
