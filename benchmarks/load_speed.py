"""How long `tunefleet.experiments.analysis.experiment.load` takes on a large experiment folder.

Fabricates an experiment of 10,000 trials x 100 iterations (1,000,000 iteration rows) with
pyarrow, in the files' real layout and metadata, then times writing it and loading it:

    python -m benchmarks.load_speed [--trials N] [--iterations N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tunefleet.experiments.analysis.experiment import load
from tunefleet.experiments.results.files import ITERATIONS_FILE, TRIALS_FILE
from tunefleet.experiments.results.parquet_io import write_parquet_atomic

__all__ = ["fabricate", "main"]

SPACE = {
    "x": {"uniform": [0.0, 1.0]},
    "lr": {"loguniform": [1.0e-4, 1.0e-1]},
    "opt": {"choice": ["adam", "sgd"]},
    "epochs": 100,
}


def fabricate(n_trials: int, n_iterations: int, *, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """A trials table and an iterations table with the columns `ResultsRecorder` writes."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"bench_{i:05d}" for i in range(n_trials)])
    node = "f" * 56
    x, lr = rng.random(n_trials), 10 ** rng.uniform(-4, -1, n_trials)
    step = np.tile(np.arange(1, n_iterations + 1), n_trials)
    score = np.repeat(x, n_iterations) * step / n_iterations + rng.normal(0, 0.01, step.size)
    iterations = pa.table(
        {
            "trial_id": pa.array(np.repeat(ids, n_iterations)),
            "training_iteration": pa.array(step),
            "time_this_iter_s": pa.array(rng.random(step.size)),
            "time_total_s": pa.array(step * 0.5),
            "timestamp": pa.array(1_700_000_000 + np.arange(step.size) // 1000),
            "node_id": pa.array([node] * step.size),
            "score": pa.array(score),
            "loss": pa.array(1.0 / step),
        }
    )
    best = score.reshape(n_trials, n_iterations).max(axis=1)
    trials = pa.table(
        {
            "trial_id": pa.array(ids),
            "status": pa.array(["TERMINATED"] * n_trials),
            "best/score": pa.array(best),
            "iterations": pa.array(np.full(n_trials, n_iterations)),
            "time_total_s": pa.array(np.full(n_trials, n_iterations * 0.5)),
            "node_ip": pa.array(["192.0.2.2"] * n_trials),
            "node_id": pa.array([node] * n_trials),
            "error": pa.nulls(n_trials),
            "config/x": pa.array(x),
            "config/lr": pa.array(lr),
            "config/opt": pa.array(rng.choice(["adam", "sgd"], n_trials)),
            "config/epochs": pa.array(np.full(n_trials, n_iterations)),
            "score": pa.array(score.reshape(n_trials, n_iterations)[:, -1]),
            "loss": pa.array(np.full(n_trials, 1.0 / n_iterations)),
        }
    )
    return trials, iterations


def _timed(fn: Callable[[], Any], repeat: int) -> float:
    """The median wall time of `repeat` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the timings; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_speed")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5, help="timings are the median of these")
    args = parser.parse_args(argv)

    trials, iterations = fabricate(args.trials, args.iterations)
    info = {
        "experiment": "bench",
        "spec": {"name": "bench", "metric": "score", "mode": "max", "space": SPACE},
        "metric": "score",
        "mode": "max",
        "started_at": 1_700_000_000.0,
        "written_at": 1_700_000_000.0 + iterations.num_rows / 1000,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "bench")
        folder.mkdir()
        raw = Path(tmp, "raw.parquet")
        write_direct = _timed(
            lambda: (pq.write_table(trials, raw), pq.write_table(iterations, raw)), args.repeat
        )

        def atomic() -> None:
            write_parquet_atomic(trials, str(folder / TRIALS_FILE), info)
            write_parquet_atomic(iterations, str(folder / ITERATIONS_FILE), info)

        write_atomic = _timed(atomic, args.repeat)
        read_direct = _timed(
            lambda: (
                pd.read_parquet(folder / TRIALS_FILE),
                pd.read_parquet(folder / ITERATIONS_FILE),
            ),
            args.repeat,
        )
        loaded = _timed(lambda: load(folder), args.repeat)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
    rows = f"{args.trials:,} trials x {args.iterations} iterations ({iterations.num_rows:,} rows)"
    print(f"{rows}, {size:.1f} MiB of Parquet; median of {args.repeat} runs:")
    print(f"  write, pyarrow pq.write_table:          {write_direct:.3f} s")
    print(f"  write, tunefleet write_parquet_atomic:  {write_atomic:.3f} s")
    print(f"  read, pandas.read_parquet (both files): {read_direct:.3f} s")
    print(f"  load(), tunefleet.experiments.analysis.experiment: {loaded:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
