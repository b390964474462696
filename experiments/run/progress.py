"""A compact live view of a running experiment, in place of Ray's verbose tables.

On a terminal one status line is redrawn in place; in a Jupyter notebook it is one output
that updates in place (IPython's display with a `display_id`); elsewhere (CI logs, pipes) a
line is printed every `log_every_s` seconds. Failed trials get a line of their own either way, and
the run starts with how many trials run at once:

    up to 2 trials at once: 2 CPUs on 1 node, 1 CPU per trial
    [0:00:21] 11/16 done · 2 running · 3 pending · 0 errored | best val_accuracy 0.9778 (lr=0.0031)

When the cluster grows or shrinks, a line says so and the status line shows the slots:

    cluster now: up to 4 trials at once: 4 CPUs on 3 nodes, 1 CPU per trial
    [0:01:02] 12/16 done · 4 running (up to 4 at once on 3 nodes) · 0 pending · 0 errored
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from math import isfinite
from typing import Any, TextIO

from ray.tune import Callback

from tunefleet.common.nesting import flatten
from tunefleet.experiments.results.recorder import error_summary

__all__ = ["ProgressPrinter", "format_config", "format_value"]


def format_value(value: Any) -> str:
    """Short text for a config value or metric: 4 significant digits for floats."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_config(config: Mapping[str, Any], keys: Iterable[str]) -> str:
    """`lr=0.0031, hidden=184` for the given (flat, `/`-joined) keys."""
    flat = flatten(config)
    return ", ".join(f"{k}={format_value(flat[k])}" for k in keys if k in flat)


class ProgressPrinter(Callback):
    """Prints trial counts, the best result so far and elapsed time.

    Args:
        metric: The target metric.
        mode: `min` or `max`.
        searched: Flat names of the parameters that vary (shown with the best trial).
        total: Trials the experiment will run (None when unknown).
        stream: Where to print (stderr by default).
        log_every_s: Seconds between lines when `stream` is not a terminal.
        at_once: How many trials run at once and why (`TrialSlots.describe`), printed
            when the run starts.
        notebook: Show the status line as a notebook output updated in place (needs
            IPython, which Jupyter's kernel has).
    """

    def __init__(
        self,
        *,
        metric: str,
        mode: str,
        searched: Iterable[str],
        total: int | None,
        stream: TextIO | None = None,
        log_every_s: float = 10.0,
        at_once: str | None = None,
        notebook: bool = False,
    ) -> None:
        self.metric = metric
        self.at_once = at_once
        self.mode = mode
        self.searched = list(searched)
        self.total = total
        self._stream = stream
        self.notebook = notebook
        self.live = self.stream.isatty() and not notebook
        self.interval = 0.25 if self.live or notebook else log_every_s
        self._handle: Any = None  # the notebook output the status line updates
        self.best: float | None = None
        self.best_config: Mapping[str, Any] = {}
        self.best_trial: str | None = None
        self.started = time.monotonic()
        self._last_print = 0.0
        self._trials: list[Any] = []
        self.slots_now: str | None = None  # set once the cluster changed
        self._saved: dict[str, str] = {}  # statuses at Ray's last state save
        self._width = shutil.get_terminal_size((120, 20)).columns

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks with the experiment; an open stream does not pickle.
        return {**self.__dict__, "_stream": None, "_handle": None}

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        if self.at_once:
            self._emit(self.at_once, final=True)

    def cluster_changed(self, cap: int, nodes: int, description: str) -> None:
        """Says that the cluster grew or shrank, and shows its slots from now on."""
        self.slots_now = f"up to {cap} at once on {nodes} node{'s' if nodes != 1 else ''}"
        self._emit(f"cluster now: {description}", final=True)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        value = result.get(self.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not isfinite(value):
            return
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best, self.best_config, self.best_trial = (
                float(value),
                trial.config,
                trial.trial_id,
            )

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._emit(f"trial {trial.trial_id} failed: {error_summary(trial)}", final=True)

    def get_state(self) -> None:
        """Ray saves its state, the last time just before Ctrl-C stops the running trials
        (which marks them TERMINATED): the statuses then are the ones the final line shows."""
        self._saved = {t.trial_id: str(t.status) for t in self._trials}

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._trials = trials
        now = time.monotonic()
        if now - self._last_print >= self.interval:
            self._last_print = now
            self._status(self.status_line(trials), final=not self.live)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if set(self._saved.values()) & {"RUNNING", "PENDING", "PAUSED"}:  # interrupted
            self._status(self.status_line(trials, self._saved) + " · interrupted", final=True)
        else:
            self._status(self.status_line(trials), final=True)

    def status_line(self, trials: list[Any], statuses: Mapping[str, str] | None = None) -> str:
        """The one-line summary of where the experiment stands (`statuses` by trial id, if
        given, in place of the trials' own)."""
        statuses = statuses or {}
        counts = Counter(statuses.get(t.trial_id) or str(t.status) for t in trials)
        done = counts["TERMINATED"]
        total = self.total if self.total is not None else len(trials)
        pending = max(total - len(trials), 0) + counts["PENDING"]
        elapsed = int(time.monotonic() - self.started)
        clock = f"{elapsed // 3600}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}"
        running = f"{counts['RUNNING']} running"
        if self.slots_now is not None:
            running += f" ({self.slots_now})"
        line = (
            f"[{clock}] {done}/{total} done · {running} · {pending} pending"
            f" · {counts['ERROR']} errored"
        )
        if counts["PAUSED"]:
            line += f" · {counts['PAUSED']} paused"
        if self.best is not None:
            line += f" | best {self.metric} {format_value(self.best)}"
            shown = format_config(self.best_config, self.searched)
            if shown:
                line += f" ({shown})"
        return line

    def _status(self, text: str, *, final: bool) -> None:
        """Shows the status line: in place in a notebook, else as `_emit` writes lines."""
        if not self.notebook:
            self._emit(text, final=final)
            return
        # IPython is there only in a notebook's kernel; it loads only in that mode.
        from IPython.display import display

        shown = {"text/plain": text}
        if self._handle is None:
            self._handle = display(shown, raw=True, display_id=True)
        else:
            self._handle.update(shown, raw=True)

    def _emit(self, text: str, *, final: bool) -> None:
        if self.live:
            clipped = text if len(text) < self._width else text[: self._width - 2] + "…"
            self.stream.write("\r\033[K" + clipped + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
