"""Trial results as Parquet: the live recorder, the iteration log, atomic files, export.

May import `spec`, `tunefleet.search` and `tunefleet.common`; never `run`, `analysis` or the CLI.
The names below load their modules on first use (the recorder imports Ray Tune).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunefleet.common.lazy import lazy_exports

if TYPE_CHECKING:
    from tunefleet.experiments.results.files import ITERATIONS_FILE, TRIALS_FILE
    from tunefleet.experiments.results.recorder import ResultsRecorder, read_metadata

__all__ = ["ITERATIONS_FILE", "TRIALS_FILE", "ResultsRecorder", "read_metadata"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ITERATIONS_FILE": "tunefleet.experiments.results.files",
        "TRIALS_FILE": "tunefleet.experiments.results.files",
        "ResultsRecorder": "tunefleet.experiments.results.recorder",
        "read_metadata": "tunefleet.experiments.results.recorder",
    },
)
