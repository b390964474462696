"""Trial results as Parquet: the live recorder, the iteration log, atomic files, export.

May import `spec`, `tunefleet.search` and `tunefleet.common`; never `run`, `analysis` or the CLI.
"""

from __future__ import annotations

from tunefleet.experiments.results.files import ITERATIONS_FILE, TRIALS_FILE
from tunefleet.experiments.results.recorder import ResultsRecorder, read_metadata

__all__ = ["ITERATIONS_FILE", "TRIALS_FILE", "ResultsRecorder", "read_metadata"]
