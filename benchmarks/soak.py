"""Soak test: 2,000 one-iteration trials in one experiment through tunefleet on this machine.

Prints the wall time, the throughput and the driver's peak memory (target below 1.5 GiB),
and checks that `trials.parquet` holds one row per trial; the exit code is 1 when either
check fails. The experiment itself is `scale`'s (`benchmarks.scale`):

    python -m benchmarks.soak [--trials 2000] [--cpus 2]
    python -m benchmarks soak
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks import scale

__all__ = ["SOAK_TRIALS", "checks", "main", "markdown", "run"]

SOAK_TRIALS = 2_000


def run(*, trials: int = SOAK_TRIALS, cpus: int = 2) -> dict[str, Any]:
    """Runs the soak experiment; returns `scale.run`'s figures."""
    return scale.run(trials=trials, cpus=cpus)


def checks(f: dict[str, Any]) -> dict[str, bool]:
    """The soak's pass/fail checks: every trial in the Parquet file, driver memory in budget."""
    return {
        "rows": f["rows_in_trials_parquet"] == f["trials"],
        "memory": f["driver_peak_rss_mib"] < f["memory_target_mib"],
    }


def markdown(f: dict[str, Any]) -> str:
    """The figures as lines of text, each check marked ok or FAILED."""
    ok = checks(f)

    def mark(name: str) -> str:
        return "ok" if ok[name] else "FAILED"

    return "\n".join(
        [
            f"- trials: {f['trials']:,} one-iteration trials, statuses {f['statuses']}",
            f"- wall time: {f['wall_s']:.1f} s ({f['trials_per_s']:.1f} trials/s)",
            f"- driver peak memory: {f['driver_peak_rss_mib']:.0f} MiB (RSS sampled "
            f"{f['driver_rss_mib_after_warmup_min']:.0f} -> {f['driver_rss_mib_max']:.0f} MiB "
            f"after warm-up; target below {f['memory_target_mib']} MiB): {mark('memory')}",
            f"- trials.parquet rows: {f['rows_in_trials_parquet']:,} of {f['trials']:,}: "
            f"{mark('rows')}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the soak test and prints its figures; returns 1 if a check failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    parser.add_argument("--trials", type=int, default=SOAK_TRIALS, help="trials (2000)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs for the in-process Ray (2)")
    args = parser.parse_args(argv)
    figures = run(trials=args.trials, cpus=args.cpus)
    print(markdown(figures))
    return 0 if all(checks(figures).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
