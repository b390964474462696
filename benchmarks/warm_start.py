"""A run on a warm Ray: `tunefleet run --address HOST:PORT` with `ray start --head` already up.

The harness starts a one-node cluster (`ray start --head`, its own temp dir and free ports,
`--num-cpus` as given), makes one unrecorded run (the cluster's first driver, for which Ray
prestarts workers), then runs the 2 no-op trials of `benchmarks.fixed_cost` `repeats` times
through `tunefleet run --address` and through the plain Ray Tune script joining the same
cluster (`ray.init(address=...)`), alternating, and stops exactly the processes it started.
Figures as in `fixed_cost` (the CPU time is the driver's alone: the workers are the cluster's).
Targets: the first trial starts within 3 s of the command's start, and the run ends within 5 s.

A warm Ray saves its start (the `ray_up` step of a cold run). It cannot save the workers: Ray
starts a job's worker processes afresh for every driver, and each imports Ray Tune (and the
trainable's module) before the trial starts; `worker_started` -> `trial_started` is that cost.

    python -m benchmarks warm-start --repeats 3
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import fixed_cost
from benchmarks.local_ray import free_ports, stop_marked

__all__ = ["CASES", "markdown", "run", "start_head", "stop_head"]

CASES = ("tunefleet", "Ray Tune script")
FIRST_TRIAL_TARGET_S = 3.0
FINISH_TARGET_S = 5.0
MARKER = "TUNEFLEET_BENCH_HEAD"


def _clean_env() -> dict[str, str]:
    dropped = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
    return {k: v for k, v in os.environ.items() if k not in dropped}


def start_head(root: Path, *, cpus: int) -> str:
    """`ray start --head` with its temp dir under `root` and free ports; returns HOST:PORT.

    Every process it starts carries a marker variable naming `root`, for `stop_head`.

    Raises:
        RuntimeError: With Ray's output, if the head did not start.
    """
    gcs, dashboard, agent, metrics, client = free_ports(5)
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        f"--port={gcs}",
        f"--num-cpus={cpus}",
        "--include-dashboard=false",
        f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={agent}",
        f"--metrics-export-port={metrics}",
        f"--ray-client-server-port={client}",
        f"--temp-dir={root / 'head'}",
        "--disable-usage-stats",
    ]
    # `ray` is a console script whose shebang may name another interpreter: run it with ours.
    proc = subprocess.run(
        [sys.executable, *command],
        env={**_clean_env(), MARKER: str(root)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0:
        stop_head(root)
        raise RuntimeError(f"ray start failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return f"127.0.0.1:{gcs}"


def stop_head(root: Path) -> None:
    """Ends every process carrying `root`'s marker (SIGTERM, then SIGKILL); removes `root`."""
    stop_marked(MARKER, root)
    shutil.rmtree(root, ignore_errors=True)


def run(
    *, repeats: int = 3, cpus: int = 2, trials: int = 2, results: int = 5
) -> list[dict[str, Any]]:
    """Both cases on one warm cluster, `repeats` times each, alternating; medians."""
    root = Path(tempfile.mkdtemp(prefix="tunefleet-warm-"))
    try:
        address = start_head(root, cpus=cpus)
        # `ray start --head` turns Ray's token authentication on: its clients send the token.
        env = {"RAY_AUTH_MODE": "token"}
        fixed_cost.measure("tunefleet", trials=trials, results=results, address=address, env=env)
        runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
        for _ in range(repeats):
            for case in CASES:
                runs[case].append(
                    fixed_cost.measure(
                        case, trials=trials, results=results, address=address, env=env
                    )
                )
    finally:
        stop_head(root)
    rows = fixed_cost.summarize(runs)
    for row in rows:
        first = row["steps"]["trial_started"]
        row["first_trial_s"] = first
        row["meets_first_trial"] = first is not None and first <= FIRST_TRIAL_TARGET_S
        row["meets_finish"] = row["wall_s"] <= FINISH_TARGET_S
        worker, trial = row["steps"]["worker_started"], row["steps"]["trial_started"]
        fit = row["steps"]["fit_started"]
        row["worker_start_to_trial_s"] = None if worker is None or trial is None else trial - worker
        row["fit_to_trial_s"] = None if fit is None or trial is None else trial - fit
    return rows


def markdown(rows: list[dict[str, Any]], cold: list[dict[str, Any]] | None = None) -> str:
    """The warm figures; with the cold `fixed_cost` rows, what the warm Ray saved."""
    lines = [
        "| case (warm Ray) | first trial started s | finished s | fit -> first trial s "
        "| worker start -> trial s | driver CPU s | driver peak MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]

    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    for r in rows:
        lines.append(
            f"| {r['case']} | {s(r['first_trial_s'])} | {r['wall_s']:.2f} "
            f"| {s(r['fit_to_trial_s'])} | {s(r['worker_start_to_trial_s'])} "
            f"| {r['driver_cpu_s']:.2f} | {r['driver_peak_mib']:.0f} |"
        )
    lines += ["", fixed_cost.markdown(rows, title="warm Ray: `ray start --head` already up")]
    tf = next(r for r in rows if r["case"] == "tunefleet")
    lines.append(
        f"\n(targets: first trial within {FIRST_TRIAL_TARGET_S:g} s: "
        f"{'met' if tf['meets_first_trial'] else 'missed'}; finished within "
        f"{FINISH_TARGET_S:g} s: {'met' if tf['meets_finish'] else 'missed'})"
    )
    cold_tf = next((r for r in cold or [] if r["case"] == "tunefleet"), None)
    if cold_tf is not None:
        saved = cold_tf["wall_s"] - tf["wall_s"]
        lines.append(
            f"\nA warm Ray saved {saved:.2f} s of tunefleet's cold run ({cold_tf['wall_s']:.2f} s;"
            f" Ray up at {s(cold_tf['steps']['ray_up'])} s cold, "
            f"{s(tf['steps']['ray_up'])} s warm); the job's new workers still take "
            f"{s(tf['worker_start_to_trial_s'])} s from their start to the first trial."
        )
    return "\n".join(lines)
