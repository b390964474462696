"""Search spaces, searchers and schedulers: from a declarative spec to Ray Tune's objects.

May import `tunefleet.common` only; never `trainables`, `cluster` or `experiments`.
"""

from __future__ import annotations

from tunefleet.search.schedulers import (
    SCHEDULERS,
    AshaSettings,
    FifoSettings,
    HyperbandSettings,
    MedianSettings,
    SchedulerSettings,
)
from tunefleet.search.settings import (
    OPTUNA_SAMPLERS,
    SEARCHERS,
    PBTSettings,
    SamplerSettings,
    SearchSettings,
)
from tunefleet.search.space import (
    Choice,
    Conditional,
    Const,
    Float,
    Int,
    Normal,
    Param,
    Space,
    SpaceError,
)
from tunefleet.search.space_parser import parse_space

__all__ = [
    "OPTUNA_SAMPLERS",
    "SCHEDULERS",
    "SEARCHERS",
    "AshaSettings",
    "Choice",
    "Conditional",
    "Const",
    "FifoSettings",
    "Float",
    "HyperbandSettings",
    "Int",
    "MedianSettings",
    "Normal",
    "PBTSettings",
    "Param",
    "SamplerSettings",
    "SchedulerSettings",
    "SearchSettings",
    "Space",
    "SpaceError",
    "parse_space",
]
