"""`SpecError`: a spec that cannot run."""

from __future__ import annotations

from tunefleet.common.errors import TunefleetError

__all__ = ["SpecError"]


class SpecError(TunefleetError, ValueError):
    """A spec that cannot run; the message is one line naming the key and the fix."""
