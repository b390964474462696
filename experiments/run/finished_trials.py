"""Shrinks the bookkeeping Ray keeps in memory for each finished trial.

Ray keeps, per trial and numeric result field, deques of the last 5 and 10 values (its
`last-n-avg` figures) until the experiment ends, and saves them with its state as pickled
text, which JSON cannot hold. A terminated trial's values never change again:
`LeanFinishedTrials` turns its deques into lists of the same values, which JSON writes as
lists (errored trials keep theirs: a retry goes on updating them). The windows are Ray's
private state: `tunefleet.common.ray_compat.freeze_finished_windows` makes the change. Its
effect on a long run's driver memory is measured by `python -m benchmarks scale`.
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
