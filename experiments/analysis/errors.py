"""The error of reading results back and asking them questions."""

from __future__ import annotations

from tunefleet.common.errors import TunefleetError

__all__ = ["AnalysisError"]


class AnalysisError(TunefleetError, ValueError):
    """Results that cannot be read or cannot answer the question; the message says why."""
