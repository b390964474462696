"""The numbers worth reporting, side by side: the baseline, the best trial's validation score
and, after a final evaluation, both configs' test scores.

    >>> outcome_table(load("results/digits_final"))       # doctest: +SKIP
                         validation  test (mean)  test (std)  seeds
    baseline                 0.9444       0.9417    0.002619      3
    best (trial 1f_0003)     0.9750       0.9639    0.003928      3
    improvement              0.0306       0.0222         NaN    NaN
"""

from __future__ import annotations

import pandas as pd

from tunefleet.common.locations import locate
from tunefleet.experiments.analysis.baseline_and_final import improvement
from tunefleet.experiments.analysis.experiment import AnalysisError, Experiment
from tunefleet.experiments.results.files import FINAL_FILE, read_baseline
from tunefleet.experiments.results.parquet_io import read_frame

__all__ = ["outcome_table"]


def outcome_table(exp: Experiment) -> pd.DataFrame | None:
    """Baseline, best trial and the improvement, or None without a baseline and final file.

    Rows: `baseline` (its search-time value), `best (trial <id>)` (the best trial's
    `best/<metric>`) and `improvement` (best minus baseline, sign-corrected so positive is
    better for either mode). Columns: `validation`, and from `final.parquet` `test (mean)`,
    `test (std)` and `seeds` (the baseline's test scores need it in the final evaluation).
    """
    if exp.path is None:
        return None
    base = read_baseline(exp.path)
    final_path = locate(exp.path) / FINAL_FILE
    final = read_frame(final_path) if final_path.is_file() else None
    if base is None and final is None:
        return None
    try:
        best = exp.best()
    except AnalysisError:
        return None
    rows: dict[str, dict[str, float]] = {}
    ranks: dict[str, int] = {}
    if base is not None:
        rows["baseline"] = {"validation": float(base[exp.best_column])}
        ranks["baseline"] = 0
    label = f"best (trial {best['trial_id']})"
    rows[label] = {"validation": float(best[exp.best_column])}
    ranks[label] = 1
    if final is not None:
        for name, rank in ranks.items():
            group = final[final["rank"] == rank]
            if not group.empty and group["trial_id"].iloc[0] in (best["trial_id"], *_ids(base)):
                rows[name].update(
                    {
                        "test (mean)": float(group["test_mean"].iloc[0]),
                        "test (std)": float(group["test_std"].iloc[0]),
                        "seeds": float(len(group)),
                    }
                )
    table = pd.DataFrame.from_dict(rows, orient="index")
    if base is not None:
        diffs = {
            column: improvement(
                float(table.loc[label, column]), float(table.loc["baseline", column]), exp.mode
            )[0]
            for column in ("validation", "test (mean)")
            if column in table.columns and table[column].notna().all()
        }
        table.loc["improvement"] = pd.Series(diffs)
    return table


def _ids(base: pd.Series | None) -> tuple[str, ...]:
    return () if base is None else (str(base["trial_id"]),)
