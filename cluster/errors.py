"""The exceptions of `tunefleet.cluster`."""

from __future__ import annotations

__all__ = ["ClusterError", "ClusterUnavailable"]


class ClusterError(RuntimeError):
    """Ray could not be reached or started; the message says what to check."""


class ClusterUnavailable(ClusterError):
    """Ray could not be started, reached or joined (a runtime failure, not a wrong command).

    The message is one line: the address, what went wrong and what to check.
    """
