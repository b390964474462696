"""Running a plan on Ray Tune: the runner, resume, baseline, final evaluation, progress.

May import `spec`, `results`, `tunefleet.search`, `tunefleet.trainables`, `tunefleet.cluster`
and `tunefleet.common`; never `analysis` or the CLI.
"""

from __future__ import annotations

from tunefleet.experiments.run.runner import RunError, RunOptions, RunSummary, run_plan

__all__ = ["RunError", "RunOptions", "RunSummary", "run_plan"]
