"""Trial results as Parquet: the live recorder, the iteration log, atomic files, export.

May import `spec`, `tunefleet.search` and `tunefleet.common`; never `run`, `analysis` or the CLI.
The names below load their modules on first use (the recorder imports Ray Tune).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:  # the public names (`tunefleet.common.lazy` reads this block)
    from tunefleet.experiments.results.files import ITERATIONS_FILE as ITERATIONS_FILE
    from tunefleet.experiments.results.files import TRIALS_FILE as TRIALS_FILE
    from tunefleet.experiments.results.recorder import ResultsRecorder as ResultsRecorder
    from tunefleet.experiments.results.recorder import read_metadata as read_metadata

__getattr__, __dir__ = lazy_exports(__name__)
