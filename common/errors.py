"""`TunefleetError`, the base of every error tunefleet shows a user as one line."""

from __future__ import annotations

__all__ = ["TunefleetError"]


class TunefleetError(Exception):
    """An error the user can fix; its message is one line saying what and how.

    The `tunefleet` command prints it as `tunefleet: error: <message>` and exits with
    `exit_code` (2: a wrong spec or command line; 1: the run could not be carried out).
    Subclasses also derive from the builtin exception that fits (`ValueError`,
    `RuntimeError`), so code that caught those before still does.
    """

    exit_code: int = 2
