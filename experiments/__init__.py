"""Experiments: the YAML spec, the runner, the `tunefleet` command and the Parquet results.

The names below load their modules on first use (`tunefleet.common.lazy`), so that the
`tunefleet` command reads its command line and starts Ray before it imports Ray Tune.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:  # the public names (`tunefleet.common.lazy` reads this block)
    from tunefleet.experiments.results.files import ITERATIONS_FILE as ITERATIONS_FILE
    from tunefleet.experiments.results.files import TRIALS_FILE as TRIALS_FILE
    from tunefleet.experiments.results.recorder import read_metadata as read_metadata
    from tunefleet.experiments.run.runner import RunOptions as RunOptions
    from tunefleet.experiments.run.runner import RunSummary as RunSummary
    from tunefleet.experiments.run.runner import run_plan as run_plan
    from tunefleet.experiments.spec.experiment import ExperimentSpec as ExperimentSpec
    from tunefleet.experiments.spec.loading import SpecError as SpecError
    from tunefleet.experiments.spec.loading import load_spec as load_spec
    from tunefleet.experiments.spec.plan import Plan as Plan
    from tunefleet.experiments.spec.plan import make_plan as make_plan

__getattr__, __dir__ = lazy_exports(__name__)
