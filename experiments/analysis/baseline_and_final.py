"""The baseline and final-evaluation lines that `tunefleet show` and `report` print."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tunefleet.common.locations import locate
from tunefleet.experiments.results.files import FINAL_FILE, read_baseline
from tunefleet.experiments.results.parquet_io import read_frame, read_metadata

__all__ = ["baseline_text", "final_text", "improvement"]


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


def final_text(exp_dir: str | Path) -> str | None:
    """The final-evaluation block for `tunefleet show`, or None without `final.parquet`
    (`exp_dir`: a local folder or a URI)."""
    path = locate(exp_dir) / FINAL_FILE
    if not path.is_file():
        return None
    info = read_metadata(path.uri)
    frame = read_frame(path)
    name, threshold = info["held_out"], float(info["gap_threshold"])
    per_config = frame.groupby("rank").first().reset_index()
    seeds = int(frame.groupby("rank").size().max())
    lines = [
        f"final evaluation on the held-out {info['split']} split ({seeds} seed"
        f"{'' if seeds == 1 else 's'} per config; gap = how much validation beats "
        f"{info['split']}):",
        f"rank  trial_id     {'val_' + name:>18}  {'test_' + name:>18}  {'gap':>8}",
    ]
    for _, row in per_config.iterrows():
        val = f"{row['val_mean']:.4f} ± {row['val_std']:.4f}"
        test = f"{row['test_mean']:.4f} ± {row['test_std']:.4f}"
        flag = "  likely overfitting to validation" if row["overfit"] else ""
        rank = "base" if row["baseline"] else str(int(row["rank"]))
        lines.append(
            f"{rank:>4}  {row['trial_id']:<11}  {val:>18}  {test:>18}  {row['gap']:>8.4f}{flag}"
        )
    if per_config["overfit"].any():
        lines.append(
            f"(a gap above {threshold:g} ({info['metric']}'s units) suggests the search "
            f"overfitted the validation split: report the {info['split']} score)"
        )
    return "\n".join(lines)
