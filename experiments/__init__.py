"""Experiments: the YAML spec, the runner, the `tunefleet` command and the Parquet results.

The names below load their modules on first use (`tunefleet.common.lazy`), so that the
`tunefleet` command reads its command line and starts Ray before it imports Ray Tune.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:
    from tunefleet.experiments.results.files import ITERATIONS_FILE, TRIALS_FILE
    from tunefleet.experiments.results.recorder import read_metadata
    from tunefleet.experiments.run.runner import RunOptions, RunSummary, run_plan
    from tunefleet.experiments.spec.experiment import ExperimentSpec
    from tunefleet.experiments.spec.loading import SpecError, load_spec
    from tunefleet.experiments.spec.plan import Plan, make_plan

__all__ = [
    "ITERATIONS_FILE",
    "TRIALS_FILE",
    "ExperimentSpec",
    "Plan",
    "RunOptions",
    "RunSummary",
    "SpecError",
    "load_spec",
    "make_plan",
    "read_metadata",
    "run_plan",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ITERATIONS_FILE": "tunefleet.experiments.results.files",
        "TRIALS_FILE": "tunefleet.experiments.results.files",
        "read_metadata": "tunefleet.experiments.results.recorder",
        "RunOptions": "tunefleet.experiments.run.runner",
        "RunSummary": "tunefleet.experiments.run.runner",
        "run_plan": "tunefleet.experiments.run.runner",
        "ExperimentSpec": "tunefleet.experiments.spec.experiment",
        "SpecError": "tunefleet.experiments.spec.loading",
        "load_spec": "tunefleet.experiments.spec.loading",
        "Plan": "tunefleet.experiments.spec.plan",
        "make_plan": "tunefleet.experiments.spec.plan",
    },
)
