"""Reading results back: `load` into pandas, `show`, `report`, the outcome table.

May import `results`, `spec`, `tunefleet.search` and `tunefleet.common`; never `run` or the CLI.

    from tunefleet.experiments.analysis import load
    exp = load("results/quickstart")
"""

from __future__ import annotations

from tunefleet.experiments.analysis.experiment import AnalysisError, Experiment, load, load_all
from tunefleet.experiments.results.recorder import read_metadata

__all__ = ["AnalysisError", "Experiment", "load", "load_all", "read_metadata"]
