"""The exceptions of `tunefleet.cluster`."""

from __future__ import annotations

from tunefleet.common.errors import TunefleetError

__all__ = ["ClusterError", "ClusterInputError", "ClusterUnavailable"]


class ClusterError(TunefleetError, RuntimeError):
    """Ray or the cluster could not be reached, started or used; the message says what to
    check (exit code 1: the command was right, carrying it out failed)."""

    exit_code = 1


class ClusterInputError(ClusterError):
    """A cluster command that cannot run as given: a missing file, a wrong address or
    option, a package the command needs (exit code 2)."""

    exit_code = 2


class ClusterUnavailable(ClusterError):
    """Ray could not be started, reached or joined (a runtime failure, not a wrong command).

    The message is one line: the address, what went wrong and what to check.
    """
