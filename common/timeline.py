"""Where a run's start-up time goes: opt-in timestamps of its steps.

With `TUNEFLEET_TIMELINE=/some/file` in the environment, `mark(step)` appends one line,
`<unix time> <step>`, to that file; without it, `mark` does nothing but read the
environment. `tunefleet run` marks `imports_done` (the runner and Ray Tune imported, the
trainable resolved), `ray_up` (Ray started or joined), `fit_started` and `fit_done` (Ray Tune's
`Tuner.fit`), and `results_written` (the Parquet files final, before Ray shuts down). The
benchmarks (`python -m benchmarks fixed-cost`) read the file, together with the steps their
own trainables mark, to show the time from the command's start to each step.
"""

from __future__ import annotations

import os
import time

__all__ = ["TIMELINE_ENV", "mark", "read"]

TIMELINE_ENV = "TUNEFLEET_TIMELINE"


def mark(step: str) -> None:
    """Appends `<unix time> <step>` to the file `TUNEFLEET_TIMELINE` names, if it is set.

    Args:
        step: A name without spaces.
    """
    path = os.environ.get(TIMELINE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short append per step
            f.write(f"{time.time():.6f} {step}\n")


def read(path: str | os.PathLike[str]) -> dict[str, float]:
    """The first time of each step in a timeline file (steps may be marked more than once,
    e.g. by every trial's worker).

    Args:
        path: The file `TUNEFLEET_TIMELINE` named.

    Returns:
        Step -> unix time of its first mark, in the file's order.
    """
    first: dict[str, float] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            when, _, step = line.strip().partition(" ")
            if step and step not in first:
                try:
                    first[step] = float(when)
                except ValueError:
                    continue
    return first
