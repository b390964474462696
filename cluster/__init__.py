"""Where experiments run: connecting to an embedded or running Ray cluster."""

from __future__ import annotations

from tunefleet.cluster.connect import (
    ClusterError,
    ClusterInputError,
    ClusterUnavailable,
    RayConnection,
    connect,
    discard_early_start,
    keep_connected,
    shutdown,
    start_early,
)
from tunefleet.cluster.join import check_address

__all__ = [
    "ClusterError",
    "ClusterInputError",
    "ClusterUnavailable",
    "RayConnection",
    "check_address",
    "connect",
    "discard_early_start",
    "keep_connected",
    "shutdown",
    "start_early",
]
