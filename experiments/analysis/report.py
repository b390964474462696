"""An HTML report of one experiment: `tunefleet report EXPERIMENT_DIR [--out DIR]`.

`write_report` draws each plot with matplotlib (Agg, no display needed) into its own PNG and
writes `report.html` beside them, with the PNGs embedded as data URIs so the HTML file stands
alone: the summary, the leaderboard, best-so-far, learning curves, parallel coordinates,
hyperparameter importance (fANOVA), the metric against the most important hyperparameters,
and, for population-based runs, the lineage of exploits.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tunefleet.common.errors import MissingDependencyError
from tunefleet.experiments.analysis.experiment import AnalysisError, Experiment, load
from tunefleet.experiments.analysis.outcome import outcome_table
from tunefleet.experiments.analysis.show import summary_line
from tunefleet.search import Choice, Float, Int, Normal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["REPORT_FILE", "write_report"]

REPORT_FILE = "report.html"


_KINDS: dict[str, dict[str, Any]] = {  # LineCollection keywords per kind of trial
    "complete": {"colors": "tab:blue", "linewidths": 1.2, "alpha": 0.8, "linestyles": "-"},
    "stopped early": {"colors": "0.55", "linewidths": 0.8, "alpha": 0.7, "linestyles": "--"},
    "in progress": {"colors": "tab:orange", "linewidths": 1.0, "alpha": 0.8, "linestyles": ":"},
    "failed": {"colors": "tab:red", "linewidths": 1.0, "alpha": 0.9, "linestyles": "-"},
}


def write_report(exp_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Writes `report.html` and one PNG per plot for an experiment folder.

    Args:
        exp_dir: The experiment folder (`<storage>/<name>`): a local path or a URI.
        out_dir: Where to write (always a local folder); by default `<exp_dir>/report` for
            a local experiment, `./report-<name>` for one on an object store.

    Returns:
        The path of `report.html`.

    Raises:
        AnalysisError: If the folder holds no results.
        ImportError: If matplotlib is not installed.
    """
    exp = load(exp_dir)
    _require_matplotlib()
    if out_dir is not None:
        out = Path(out_dir)
    elif isinstance(exp.path, Path):
        out = exp.path / "report"
    else:  # an object store: the report is for reading here
        out = Path.cwd() / f"report-{exp.name}"
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    try:
        importance: pd.Series | None = exp.importance()
    except AnalysisError as exc:
        importance = None
        notes.append(f"Not computed: {exc}")
    plots: list[tuple[str, str, Callable[[], Figure | None]]] = [
        ("best_so_far", "Best value so far, over trials and over wall time", lambda: _best(exp)),
        ("learning_curves", f"Learning curves of {exp.metric}", lambda: _curves(exp)),
        ("parallel_coordinates", "Searched hyperparameters", lambda: _parallel(exp)),
        ("importance", "Hyperparameter importance (fANOVA)", lambda: _importance(importance)),
        ("importance_scatter", f"{exp.metric} against the most important hyperparameters",
         lambda: _scatter(exp, importance)),
        ("pbt_lineage", "PBT lineage: which trial copied which", lambda: _lineage(exp)),
    ]  # fmt: skip
    figures: list[tuple[str, str, bytes]] = []
    for name, caption, draw in plots:
        try:
            fig = draw()
        except AnalysisError as exc:
            notes.append(f"Not drawn, {caption.lower()}: {exc}")
            continue
        if fig is None:
            continue
        path = out / f"{name}.png"
        _save(fig, path)
        figures.append((name, caption, path.read_bytes()))
    report = out / REPORT_FILE
    report.write_text(_html(exp, figures, notes, importance), encoding="utf-8")
    return report


# Plots --------------------------------------------------------------------------------


def _best(exp: Experiment) -> Figure:
    table = exp.best_so_far()
    if table["value"].notna().sum() == 0:
        raise AnalysisError(f"no trial reported {exp.metric!r} without failing.")
    fig = _figure(11, 4, ncols=2)
    for ax, x, label in zip(
        fig.axes,
        (table.index, table["wall_s"]),
        ("trials (by last result)", "wall time (s)"),
        strict=True,
    ):
        ax.scatter(x, table["value"], s=14, alpha=0.5, color="tab:blue", label="trial's best")
        ax.step(x, table["best_so_far"], where="post", color="tab:green", label="best so far")
        ax.set_xlabel(label)
        ax.set_ylabel(exp.metric)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(loc="best")
    return fig


def _curves(exp: Experiment) -> Figure:
    # matplotlib: the optional `tunefleet[report]`, loaded when a report is written.
    from matplotlib.collections import LineCollection

    curves = exp.learning_curves()
    trials = exp.trials.set_index("trial_id")
    longest = int(trials["iterations"].max()) if len(trials) else 0
    fig = _figure(9, 5)
    ax = fig.axes[0]
    segments: dict[str, list[np.ndarray]] = {kind: [] for kind in _KINDS}
    ends: dict[str, list[np.ndarray]] = {kind: [] for kind in _KINDS}
    for trial_id in curves.columns:
        curve = curves[trial_id].dropna()
        if curve.empty:
            continue
        points = np.column_stack([curve.index.to_numpy(float), curve.to_numpy(float)])
        kind = _kind(trials.loc[trial_id], longest) if trial_id in trials.index else "complete"
        segments[kind].append(points)
        ends[kind].append(points[-1])
    for kind, style in _KINDS.items():
        if segments[kind]:
            label = f"{kind} ({len(segments[kind])})"
            ax.add_collection(LineCollection(segments[kind], label=label, **style))
    for kind, marker, size in (("stopped early", "o", 10), ("failed", "x", 30)):
        if ends[kind]:  # where they stopped; visible even after a single iteration
            at = np.array(ends[kind])
            ax.scatter(at[:, 0], at[:, 1], s=size, marker=marker, color=_KINDS[kind]["colors"])
    with suppress(AnalysisError, KeyError):
        curve = curves[exp.best()["trial_id"]].dropna()
        ax.plot(curve.index, curve.to_numpy(float), color="tab:green", lw=2.5, label="best trial")
    ax.autoscale()
    ax.set_xlabel("training_iteration")
    ax.set_ylabel(exp.metric)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return fig


def _kind(trial: pd.Series, longest: int) -> str:
    status = str(trial["status"])
    if status == "ERROR":
        return "failed"
    if status != "TERMINATED":
        return "in progress"
    return "stopped early" if int(trial["iterations"]) < longest else "complete"


def _parallel(exp: Experiment) -> Figure | None:
    # matplotlib: the optional `tunefleet[report]`, loaded when a report is written.
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    if not exp.searched:
        return None
    ranked = exp.top(len(exp.trials))
    if ranked.empty:
        raise AnalysisError(f"no trial reported {exp.metric!r} without failing.")
    ranked = ranked.iloc[::-1]  # the best drawn last, on top
    names = list(exp.searched)
    axes = [_axis(exp, ranked[f"config/{n}"], n) for n in names]
    metric = ranked[exp.best_column].to_numpy(float)
    low, high = float(np.nanmin(metric)), float(np.nanmax(metric))
    axes.append(((metric - low) / (high - low or 1.0), [(0.0, f"{low:.4g}"), (1.0, f"{high:.4g}")]))
    ys = np.column_stack([a[0] for a in axes])
    xs = np.arange(ys.shape[1], dtype=float)
    norm = Normalize(low, high if high > low else low + 1.0)
    cmap = colormaps["viridis"]
    fig = _figure(max(6.0, 1.6 * len(xs)), 5)
    ax = fig.axes[0]
    lines = [np.column_stack([xs, row]) for row in ys]
    ax.add_collection(LineCollection(lines, colors=cmap(norm(metric)), linewidth=1.2, alpha=0.8))
    for x, (_, ticks) in zip(xs, axes, strict=True):
        ax.axvline(x, color="0.3", linewidth=0.8)
        for y, label in ticks:
            ax.annotate(label, (x, y), xytext=(3, 0), textcoords="offset points", fontsize=7,
                        va="center")  # fmt: skip
    ax.set_xlim(-0.1, xs[-1] + 0.4)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks(xs, [*names, exp.best_column])
    ax.set_yticks([])
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=exp.metric)
    return fig


def _axis(exp: Experiment, values: pd.Series, name: str) -> tuple[np.ndarray, list[Any]]:
    """A parameter's values scaled to [0, 1] (log scale for log parameters), with ticks."""
    param = exp.space.params.get(name) if exp.space is not None else None
    if isinstance(param, Choice) or not pd.api.types.is_numeric_dtype(values):
        labels = (
            list(param.values) if isinstance(param, Choice) else sorted(values.unique(), key=str)
        )
        keys = [_label_key(v) for v in labels]
        index = values.map(lambda v: keys.index(_label_key(v)) if _label_key(v) in keys else np.nan)
        scale = max(len(keys) - 1, 1)
        ticks = [(i / scale, _short(v)) for i, v in enumerate(labels)]
        return index.to_numpy(float) / scale, ticks
    numbers = values.to_numpy(float)
    if isinstance(param, (Float, Int)):
        low, high, log = float(param.low), float(param.high), param.log
    else:  # no declared range (normal parameters among them): the values drawn
        low, high = float(np.nanmin(numbers)), float(np.nanmax(numbers))
        log = isinstance(param, Normal) and param.log and low > 0
    if log:
        scaled, lo, hi = np.log10(numbers), math.log10(low), math.log10(high)
    else:
        scaled, lo, hi = numbers, low, high
    return (scaled - lo) / (hi - lo or 1.0), [(0.0, f"{low:.4g}"), (1.0, f"{high:.4g}")]


def _importance(importance: pd.Series | None) -> Figure | None:
    if importance is None or importance.empty:
        return None
    fig = _figure(7, 0.8 + 0.45 * len(importance))
    ax = fig.axes[0]
    ax.barh(importance.index[::-1], importance.to_numpy()[::-1], color="tab:blue")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def _scatter(exp: Experiment, importance: pd.Series | None) -> Figure | None:
    if importance is None or importance.empty:
        return None
    names = list(importance.index[:3])
    ranked = exp.top(len(exp.trials))
    fig = _figure(4.2 * len(names), 4, ncols=len(names))
    for ax, name in zip(fig.axes, names, strict=True):
        param = exp.space.params.get(name) if exp.space is not None else None
        values = ranked[f"config/{name}"]
        if isinstance(param, Choice) or not pd.api.types.is_numeric_dtype(values):
            scaled, ticks = _axis(exp, values, name)
            count = max(len(ticks) - 1, 1)
            x = scaled * count
            ax.set_xticks([t[0] * count for t in ticks], [t[1] for t in ticks])
        else:
            x = values.to_numpy(float)
            if isinstance(param, (Float, Int, Normal)) and param.log:
                ax.set_xscale("log")
        y = ranked[exp.best_column].to_numpy(float)
        ax.scatter(x, y, s=18, alpha=0.7, color="tab:blue")
        ax.scatter(x[:1], y[:1], s=120, marker="*", color="tab:green", label="best", zorder=3)
        ax.set_xlabel(f"{name} (importance {importance[name]:.2f})")
        ax.set_ylabel(exp.best_column)
        ax.grid(alpha=0.3)
    fig.axes[0].legend(loc="best")
    return fig


def _lineage(exp: Experiment) -> Figure | None:
    exploits = exp.exploits
    if exploits is None or exploits.empty:
        return None
    order = list(exp.trials["trial_id"])
    known = set(order)
    named = pd.concat([exploits["trial_id"], exploits["cloned_from"]]).unique()
    order += [t for t in named if t not in known]
    row = {t: i for i, t in enumerate(order)}
    spans = exp.trials.set_index("trial_id")["iterations"]
    fig = _figure(9, 1.2 + 0.4 * len(order))
    ax = fig.axes[0]
    for trial_id, y in row.items():
        ax.hlines(y, 1, float(spans.get(trial_id, 1)), color="0.75", linewidth=3)
    for e in exploits.itertuples(index=False):
        start = (float(e.cloned_iteration), row[e.cloned_from])
        end = (float(e.training_iteration), row[e.trial_id])
        arrow = {
            "arrowstyle": "->",
            "color": "tab:purple",
            "alpha": 0.8,
            "connectionstyle": "arc3,rad=0.15",
        }
        ax.annotate("", xy=end, xytext=start, arrowprops=arrow)
        ax.plot(*end, marker="o", markersize=4, color="tab:purple")
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlabel("training_iteration")
    ax.set_title("arrows: cloned trial (at its iteration) -> exploiting trial", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return fig


# Files --------------------------------------------------------------------------------


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401  (optional: tunefleet[report]; is it installed?)
    except ImportError as exc:
        raise MissingDependencyError(
            "tunefleet report needs matplotlib; install it with `pip install 'tunefleet[report]'`."
        ) from exc


def _figure(width: float, height: float, *, ncols: int = 1) -> Figure:
    # matplotlib: the optional `tunefleet[report]`, loaded when a report is written.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # Agg: no display, no pyplot state
    fig.subplots(1, ncols, squeeze=False)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", dpi=100)


def _label_key(value: Any) -> str:
    """Comparable text for a choice value (Parquet gives lists back as arrays)."""
    return str(value.tolist() if isinstance(value, np.ndarray) else value)


def _short(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 16 else text[:13] + "..."


def _html(
    exp: Experiment,
    figures: list[tuple[str, str, bytes]],
    notes: list[str],
    importance: pd.Series | None,
) -> str:
    esc = html.escape
    meta = exp.metadata
    spec = meta.get("spec", {})
    facts = {
        "metric": f"{exp.metric} ({exp.mode})",
        "trainable": spec.get("trainable"),
        "searcher": (spec.get("search") or {}).get("algorithm"),
        "started": _when(meta.get("started_at")),
        "results written": _when(meta.get("written_at")),
        "versions": ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items()),
    }
    board = exp.top(10)
    board.columns = [c.removeprefix("config/") for c in board.columns]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(exp.name)} - tunefleet report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;font-size:0.9em}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "figure{margin:1.5em 0}img{max-width:100%}.note{color:#777}</style></head><body>",
        f"<h1>{esc(exp.name)}</h1>",
        f"<p>{esc(summary_line(exp))}</p>",
        "<table>",
        *(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in facts.items() if v),
        "</table>",
        *_outcome_html(exp),
        "<h2>Leaderboard</h2>",
        board.to_html(float_format=lambda v: f"{v:.4g}", border=0, na_rep="-")
        if not board.empty
        else "<p>No trial reported the metric without failing.</p>",
    ]
    if importance is not None:
        parts += [
            "<h2>Importance</h2>",
            importance.to_frame().to_html(float_format="{:.3f}".format),
        ]
    parts.append("<h2>Plots</h2>")
    for name, caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure id="{esc(name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
        )
    parts += [f'<p class="note">{esc(note)}</p>' for note in notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _outcome_html(exp: Experiment) -> list[str]:
    """Baseline, best validation and test scores side by side (`outcome_table`)."""
    table = outcome_table(exp)
    if table is None:
        return []
    text = table.to_html(float_format=lambda v: f"{v:.4g}", border=0, na_rep="-")
    return ["<h2>Baseline, validation and test</h2>", text]


def _when(timestamp: Any) -> str | None:
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(float(timestamp), tz=timezone.utc)
    return moment.isoformat(timespec="seconds")
