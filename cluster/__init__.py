"""Where experiments run: connecting to an embedded or running Ray cluster."""

from __future__ import annotations

from tunefleet.cluster.connect import (
    ClusterError,
    ClusterInputError,
    RayConnection,
    connect,
    discard_early_start,
    start_early,
)

__all__ = [
    "ClusterError",
    "ClusterInputError",
    "RayConnection",
    "connect",
    "discard_early_start",
    "start_early",
]
