"""The earliest first epoch of any tool that starts Ray and trains in Ray's worker processes.

`python -m benchmarks.ray_floor WORKLOAD` (the `ray-floor` case of
`benchmarks.time_to_target`): the driver imports only Ray and starts a local one
(`include_dashboard=False`), then two Ray tasks, one per CPU, each train one fixed config of
the workload with the same plain loop as the Optuna cases (`workloads.epochs`, which
loads the data where it runs). No Ray Tune run, no searcher, no results: what is left is
Ray's start, its worker processes' start and their imports (Ray Tune's, torch and
scikit-learn, as the loop's data module needs), the data and one epoch. The harness's
timeline shows each (`imports_done` and `ray_up` from the driver, `data_loaded` and
`first_result` from the workers).
"""

from __future__ import annotations

import sys
from typing import Any

from tunefleet.common.timeline import mark

__all__ = ["CONFIG", "main"]

# A config of both workloads' spaces that trains well (0.97 validation accuracy on the MLP).
CONFIG: dict[str, Any] = {
    "lr": 3.0e-3,
    "batch_size": 32,
    "hidden": 256,
    "channels": 16,
    "dropout": 0.1,
    "weight_decay": 1.0e-5,
    "optimizer": "adam",
}


def _train(seed: int, workload: str) -> None:
    from benchmarks.workloads import epochs  # in the worker: torch and the data

    for _ in epochs(CONFIG, seed=seed, workload=workload):
        pass


def main(workload: str) -> None:
    """Starts Ray and trains `CONFIG` in two tasks at once."""
    import ray

    mark("imports_done")
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    mark("ray_up")
    train = ray.remote(num_cpus=1)(_train)
    mark("fit_started")
    ray.get([train.remote(seed, workload) for seed in range(2)])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mlp")
