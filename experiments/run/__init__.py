"""Running a plan on Ray Tune: the runner, resume, baseline, final evaluation, progress.

May import `spec`, `results`, `tunefleet.search`, `tunefleet.trainables`, `tunefleet.cluster`
and `tunefleet.common`; never `analysis` or the CLI. The names below load their modules on
first use (the runner imports Ray Tune).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:  # the public names (`tunefleet.common.lazy` reads this block)
    from tunefleet.experiments.run.experiment_folder import RunError as RunError
    from tunefleet.experiments.run.runner import RunOptions as RunOptions
    from tunefleet.experiments.run.runner import RunSummary as RunSummary
    from tunefleet.experiments.run.runner import run_plan as run_plan

__getattr__, __dir__ = lazy_exports(__name__)
