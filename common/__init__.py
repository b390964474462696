"""The bottom layer: what `search`, `trainables`, `cluster` and `experiments` all need.

It imports none of them: the one error base, config-key nesting, the pydantic base section,
and the one module that touches Ray's private state.
"""

from __future__ import annotations

from tunefleet.common.errors import MissingDependencyError, TunefleetError

__all__ = ["MissingDependencyError", "TunefleetError"]
