"""Experiments: the YAML spec, the runner, the `tunefleet` command and the Parquet results."""

from __future__ import annotations

from tunefleet.experiments.loading import SpecError, load_spec
from tunefleet.experiments.plan import Plan, make_plan
from tunefleet.experiments.results import ITERATIONS_FILE, TRIALS_FILE, read_metadata
from tunefleet.experiments.runner import RunOptions, RunSummary, run_plan
from tunefleet.experiments.spec import ExperimentSpec

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
