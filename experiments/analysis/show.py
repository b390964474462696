"""A terminal leaderboard of one experiment: `tunefleet show EXPERIMENT_DIR [--top K]`.

linear: 5 trials (5 terminated); best score = 12.95 (trial 6484b_00004); wall time 2.1 s
rank  trial_id     status      iter  best/score  score       x  offset
   1  6484b_00004  TERMINATED     4       12.95  12.95  0.7378      10
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunefleet.experiments.analysis.baseline_and_final import baseline_text
from tunefleet.experiments.analysis.experiment import Experiment

__all__ = ["leaderboard_text", "summary_line"]


def summary_line(exp: Experiment) -> str:
    """One line: trials by status, the best value and its trial, the wall time."""
    counts = exp.trials["status"].value_counts()
    by_status = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    n = len(exp.trials)
    parts = [f"{exp.name}: {n} trial{'' if n == 1 else 's'} ({by_status or 'none'})"]
    board = exp.top(1)
    if board.empty:
        parts.append(f"no trial reported {exp.metric} without failing")
    else:
        best = board.iloc[0]
        parts.append(
            f"best {exp.metric} = {_cell(best[exp.best_column])} (trial {best['trial_id']})"
        )
    if exp.wall_s is not None:
        parts.append(f"wall time {exp.wall_s:.1f} s")
    return "; ".join(parts)


def leaderboard_text(exp: Experiment, k: int = 10) -> str:
    """The summary line and a fixed-width table of the `k` best trials that did not fail.

    Columns: rank, trial_id, status, iterations, `best/<metric>`, the last reported value of
    the metric, and each searched hyperparameter; numbers with 4 significant digits.

    Args:
        exp: The experiment (`tunefleet.experiments.analysis.experiment.load`).
        k: How many trials to list.
    """
    board = exp.top(k)
    lines = [summary_line(exp)]
    if exp.path is not None:
        best = None if board.empty else float(board.iloc[0][exp.best_column])
        base = baseline_text(exp.path, metric=exp.metric, mode=exp.mode, best=best)
        lines += [base] if base else []
    if board.empty:
        return "\n".join(lines)
    headers = ["rank", "trial_id", "status", "iter", exp.best_column, exp.metric]
    columns = ["trial_id", "status", "iterations", exp.best_column, exp.metric]
    params = [c for c in board.columns if c.startswith("config/")]
    headers += [c.removeprefix("config/") for c in params]
    rows = [
        [str(rank), *(_cell(row.get(c)) for c in columns + params)]
        for rank, row in board.iterrows()
    ]
    numeric = [True, False, False] + [_is_number_column(board.get(c)) for c in columns[2:] + params]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(padded).rstrip()

    lines.append(line(headers))
    lines += [line(r) for r in rows]
    failed = int((exp.trials["status"] == "ERROR").sum())
    if failed:
        lines.append(f"({failed} failed trial{'s' if failed != 1 else ''} not ranked)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """Table text: floats with 4 significant digits, a dash for missing values."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _is_number_column(column: Any) -> bool:
    if column is None:
        return False
    kind = getattr(column.dtype, "kind", "O")
    return bool(kind in "iuf")
