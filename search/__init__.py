"""Search spaces, searchers and schedulers: from a declarative spec to Ray Tune's objects."""

from __future__ import annotations

from tunefleet.search.settings import (
    SCHEDULERS,
    SEARCHERS,
    AshaSettings,
    FifoSettings,
    SchedulerSettings,
    SearchSettings,
)
from tunefleet.search.space import (
    Choice,
    Const,
    Float,
    Int,
    Param,
    Space,
    SpaceError,
    parse_space,
)

__all__ = [
    "SCHEDULERS",
    "SEARCHERS",
    "AshaSettings",
    "Choice",
    "Const",
    "FifoSettings",
    "Float",
    "Int",
    "Param",
    "SchedulerSettings",
    "SearchSettings",
    "Space",
    "SpaceError",
    "parse_space",
]
