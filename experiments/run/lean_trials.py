"""Shrinks the bookkeeping Ray keeps in memory for each finished trial.

For every numeric field of a trial's results (its metrics, Ray's timings, the flattened
config), Ray's `Trial.run_metadata.metric_n_steps` holds two `deque`s of the last 5 and 10
values (for its `last-5-avg` / `last-10-avg` figures), for every trial of the experiment,
to its end. A deque costs about 600 bytes, and JSON cannot hold one: Ray writes each into
its experiment state as cloudpickled hex, and caches that text per trial. Measured with
tracemalloc on a 1,500-trial run: the deques were 24% of the driver's growth, 11 KB per
trial, and pickling them made most of the 2.4 ms each trial's state costs to save.

Once a trial has terminated, those values never change again: `LeanFinishedTrials` turns
its deques into lists (the same values), which JSON writes as lists. Errored trials keep
theirs: a retry goes on updating them. The windows are Ray's private state:
`tunefleet.common.ray_compat.freeze_finished_windows` does the change.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from tunefleet.common.ray_compat import freeze_finished_windows

__all__ = ["LeanFinishedTrials"]


class LeanFinishedTrials(Callback):
    """Turns a terminated trial's last-n value windows from deques into lists."""

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        freeze_finished_windows(trial)
