"""The spec: a YAML file read, overridden, validated and resolved into a `Plan` (no Ray).

May import `tunefleet.search`, `tunefleet.trainables` and `tunefleet.common`; nothing else of
`experiments`.
"""

from __future__ import annotations

from tunefleet.experiments.spec.experiment import ExperimentSpec
from tunefleet.experiments.spec.loading import SpecError, load_spec
from tunefleet.experiments.spec.plan import Plan, make_plan

__all__ = ["ExperimentSpec", "Plan", "SpecError", "load_spec", "make_plan"]
