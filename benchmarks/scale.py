"""Scale: many one-iteration trials in one experiment; throughput and driver memory over time.

Runs `trials` do-nothing trials (one result each) through tunefleet on an in-process Ray with
`cpus` CPUs, samples the driver's resident memory every half second, and compares the
throughput of the first and the last tenth of the trials (by Ray's result timestamps in
`iterations.parquet`, after the first tenth as warm-up):

    python -m benchmarks scale --scale-trials 10000
    python -m benchmarks.scale --trials 2000     # the soak test
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["markdown", "run"]

MEMORY_TARGET_MIB = 1536


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Sampler(threading.Thread):
    def __init__(self, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        while not self._stop_event.is_set():
            self.samples.append((time.perf_counter() - start, _rss_mib()))
            self._stop_event.wait(self.every_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run(*, trials: int = 10_000, cpus: int = 2) -> dict[str, Any]:
    """Runs the experiment and returns wall time, throughput and memory figures."""
    import pandas as pd

    from benchmarks.overhead import init_ray
    from tunefleet.experiments import RunOptions, make_plan, run_plan
    from tunefleet.experiments.spec.loading import validate_spec

    init_ray(cpus)
    raw = {
        "name": "scale",
        "trainable": "benchmarks.overhead:noop",
        "metric": "score",
        "mode": "max",
        "space": {"x": {"uniform": [0.0, 1.0]}, "results": 1},
        "search": {"algorithm": "random", "num_samples": trials, "seed": 0},
    }
    plan = make_plan(validate_spec(raw), raw)
    sampler = _Sampler()
    with tempfile.TemporaryDirectory(prefix="tunefleet-scale-") as root:
        sampler.start()
        started = time.perf_counter()
        try:
            summary = run_plan(plan, RunOptions(storage=root, name="scale", overwrite=True))
        finally:
            wall = time.perf_counter() - started
            sampler.stop()
        exp = Path(root, "scale")
        rows = len(pd.read_parquet(exp / "trials.parquet", columns=["trial_id"]))
        done = pd.read_parquet(exp / "iterations.parquet", columns=["timestamp"])["timestamp"]
    ends = done.sort_values().to_numpy(dtype=float)
    tenth = max(1, len(ends) // 10)
    first = tenth / max(ends[2 * tenth - 1] - ends[tenth - 1], 1.0) if len(ends) >= 3 else None
    last = tenth / max(ends[-1] - ends[-tenth - 1], 1.0) if len(ends) >= 3 else None
    memory = [m for _, m in sampler.samples]
    warm = memory[len(memory) // 10 :] or memory
    return {
        "trials": trials,
        "rows_in_trials_parquet": rows,
        "statuses": summary.statuses,
        "wall_s": wall,
        "trials_per_s": trials / wall,
        "trials_per_s_early": first,
        "trials_per_s_late": last,
        "late_vs_early": last / first if first and last else None,
        "driver_rss_mib_after_warmup_min": min(warm),
        "driver_rss_mib_max": max(memory),
        "driver_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "memory_target_mib": MEMORY_TARGET_MIB,
        "memory_samples": sampler.samples[:: max(1, len(sampler.samples) // 50)],
    }


def markdown(f: dict[str, Any]) -> str:
    """The scale figures as a markdown table."""
    ratio = f"{f['late_vs_early']:.2f}" if f["late_vs_early"] else "-"
    return "\n".join(
        [
            "| trials | rows | wall s | trials/s | late/early throughput "
            "| driver RSS after warm-up (MiB) | driver peak (MiB) |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| {f['trials']:,} | {f['rows_in_trials_parquet']:,} | {f['wall_s']:.0f} "
            f"| {f['trials_per_s']:.1f} | {ratio} "
            f"| {f['driver_rss_mib_after_warmup_min']:.0f} -> "
            f"{f['driver_rss_mib_max']:.0f} | {f['driver_peak_rss_mib']:.0f} |",
            f"\n(target: driver below {f['memory_target_mib']} MiB and flat after warm-up; "
            "late/early throughput at least 0.8)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args(argv)
    figures = run(trials=args.trials, cpus=args.cpus)
    print(markdown(figures))
    ok = figures["rows_in_trials_parquet"] == args.trials
    ok = ok and figures["driver_peak_rss_mib"] < MEMORY_TARGET_MIB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
