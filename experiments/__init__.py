"""Experiments: the YAML spec, the runner, the `tunefleet` command and the Parquet results."""

from __future__ import annotations

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
