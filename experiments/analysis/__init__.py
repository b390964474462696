"""Reading results back: `load` into pandas, `show`, `report`, the outcome table.

May import `results`, `spec`, `tunefleet.search` and `tunefleet.common`; never `run` or the CLI.

    from tunefleet.experiments.analysis import load
    exp = load("results/quickstart")

The names load their modules on first use (pandas, pyarrow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:
    from tunefleet.experiments.analysis.errors import AnalysisError
    from tunefleet.experiments.analysis.experiment import Experiment, load, load_all
    from tunefleet.experiments.results.recorder import read_metadata

__all__ = ["AnalysisError", "Experiment", "load", "load_all", "read_metadata"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AnalysisError": "tunefleet.experiments.analysis.errors",
        "Experiment": "tunefleet.experiments.analysis.experiment",
        "load": "tunefleet.experiments.analysis.experiment",
        "load_all": "tunefleet.experiments.analysis.experiment",
        "read_metadata": "tunefleet.experiments.results.recorder",
    },
)
