"""Reading results back: `load` into pandas, `show`, `report`, the outcome table.

May import `results`, `spec`, `tunefleet.search` and `tunefleet.common`; never `run` or the CLI.

    from tunefleet.experiments.analysis import load
    exp = load("results/quickstart")

The names load their modules on first use (pandas, pyarrow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:  # the public names (`tunefleet.common.lazy` reads this block)
    from tunefleet.experiments.analysis.errors import AnalysisError as AnalysisError
    from tunefleet.experiments.analysis.experiment import Experiment as Experiment
    from tunefleet.experiments.analysis.experiment import load as load
    from tunefleet.experiments.analysis.experiment import load_all as load_all
    from tunefleet.experiments.results.recorder import read_metadata as read_metadata

__getattr__, __dir__ = lazy_exports(__name__)
