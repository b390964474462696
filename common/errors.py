"""`TunefleetError`, the base of every error tunefleet shows a user as one line."""

from __future__ import annotations

__all__ = ["MissingDependencyError", "TunefleetError"]


class TunefleetError(Exception):
    """An error the user can fix; its message is one line saying what and how.

    The `tunefleet` command prints it as `tunefleet: error: <message>` and exits with
    `exit_code` (2: a wrong spec or command line; 1: the run could not be carried out, e.g.
    Ray could not be reached). Subclasses also derive from the builtin exception that fits
    (`ValueError`, `RuntimeError`), so code that caught those before still does.
    """

    exit_code: int = 2


class MissingDependencyError(TunefleetError, ImportError):
    """An optional package the command needs is not installed; the message names it and
    what to install (exit code 2, as for a spec that asks for a missing package)."""
