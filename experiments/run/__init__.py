"""Running a plan on Ray Tune: the runner, resume, baseline, final evaluation, progress.

May import `spec`, `results`, `tunefleet.search`, `tunefleet.trainables`, `tunefleet.cluster`
and `tunefleet.common`; never `analysis` or the CLI. The names below load their modules on
first use (the runner imports Ray Tune).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:
    from tunefleet.experiments.run.experiment_folder import RunError
    from tunefleet.experiments.run.runner import RunOptions, RunSummary, run_plan

__all__ = ["RunError", "RunOptions", "RunSummary", "run_plan"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "RunError": "tunefleet.experiments.run.experiment_folder",
        "RunOptions": "tunefleet.experiments.run.runner",
        "RunSummary": "tunefleet.experiments.run.runner",
        "run_plan": "tunefleet.experiments.run.runner",
    },
)
