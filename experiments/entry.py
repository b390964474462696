"""The `tunefleet` command's entry point (and `python -m tunefleet.experiments`).

It imports nothing but `tunefleet.common.startup` before it pauses the garbage collector, so
that every import of the command, the CLI's own included, runs without full collections
(`tunefleet.common.startup` says why). `run` resumes the collector right before Ray Tune's
fit (its trainable imported and Ray started), every other command once its arguments are
parsed, and this function on its way out in any case.
"""

from __future__ import annotations

from collections.abc import Sequence

from tunefleet.common import startup

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `tunefleet` command line; returns the exit code."""
    startup.pause()
    try:
        # Imported after the pause: the CLI imports Ray Tune, pandas, pyarrow and pydantic.
        from tunefleet.experiments.cli import main as run_command

        return run_command(argv)
    finally:
        startup.resume()
