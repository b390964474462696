"""Per-trial overhead and scheduling efficiency, tunefleet against plain Ray Tune scripts.

All cases share one Ray instance started once (`ray.init(num_cpus=2)`), so the figures are
the cost of running trials, not of starting Ray:

- overhead: `trials` do-nothing trials of `results` results each, through tunefleet (a spec
  run by `run_plan`), through a plain `tune.Tuner` with Ray's defaults, and through a plain
  `tune.Tuner` with `reuse_actors=True`. Milliseconds per trial of `Tuner.fit` wall time.
- scheduling: `trials` trials of `work_s` seconds of busy work each through tunefleet, on
  `cpus` CPUs; efficiency = ideal time (`trials * work_s / cpus`) / actual time.

    python -m benchmarks overhead scheduling --repeats 3
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

__all__ = ["busy", "noop", "overhead", "scheduling"]


def noop(config: dict[str, Any]) -> None:
    """A trial that does nothing but report `config["results"]` results."""
    from ray import tune

    for i in range(int(config.get("results", 5))):
        tune.report({"score": float(i)})


def busy(config: dict[str, Any]) -> None:
    """A trial that keeps one CPU busy for `config["work_s"]` seconds, then reports once."""
    from ray import tune

    end = time.perf_counter() + float(config["work_s"])
    x = 0
    while time.perf_counter() < end:
        x += 1
    tune.report({"score": float(x % 7)})


def _tunefleet(
    root: str, name: str, trainable: str, trials: int, constants: dict[str, Any]
) -> float:
    from tunefleet.experiments import RunOptions, make_plan, run_plan
    from tunefleet.experiments.spec.loading import validate_spec

    raw = {
        "name": name,
        "trainable": trainable,
        "metric": "score",
        "mode": "max",
        "space": {"x": {"uniform": [0.0, 1.0]}, **constants},
        "search": {"algorithm": "random", "num_samples": trials, "seed": 0},
    }
    plan = make_plan(validate_spec(raw), raw)
    started = time.perf_counter()
    summary = run_plan(plan, RunOptions(storage=root, name=name, overwrite=True))
    elapsed = time.perf_counter() - started
    if summary.statuses.get("TERMINATED") != trials:
        raise RuntimeError(f"tunefleet run ended with {summary.statuses}, not {trials} trials")
    return elapsed


def _plain_ray(
    root: str, name: str, fn: Callable[..., Any], trials: int, constants: dict, reuse: bool
) -> float:
    from ray import tune

    tuner = tune.Tuner(
        fn,
        param_space={"x": tune.uniform(0.0, 1.0), **constants},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=trials, reuse_actors=reuse
        ),
        run_config=tune.RunConfig(name=name, storage_path=root, verbose=0),
    )
    started = time.perf_counter()
    grid = tuner.fit()
    elapsed = time.perf_counter() - started
    if grid.num_terminated != trials:
        raise RuntimeError(f"plain Ray run ended with {grid.num_terminated}/{trials} trials")
    return elapsed


def overhead(*, trials: int = 100, results: int = 5, repeats: int = 3) -> list[dict[str, Any]]:
    """Milliseconds per do-nothing trial: tunefleet, plain Ray defaults, plain Ray reuse.

    Ray must be initialized. Runs are interleaved (one of each per repeat) so that a slow
    moment of the machine hits every case alike.
    """
    constants = {"results": results}
    cases: dict[str, Callable[[str, str], float]] = {
        "tunefleet": lambda root, name: _tunefleet(
            root, name, f"{__name__}:noop", trials, constants
        ),
        "Ray Tune, defaults": lambda root, name: _plain_ray(
            root, name, noop, trials, constants, reuse=False
        ),
        "Ray Tune, reuse_actors=True": lambda root, name: _plain_ray(
            root, name, noop, trials, constants, reuse=True
        ),
    }
    times = _interleaved(cases, repeats)
    rows: list[dict[str, Any]] = []
    for case, seconds in times.items():
        rows.append(
            {
                "case": case,
                "trials": trials,
                "results_per_trial": results,
                "runs_s": seconds,
                "median_s": statistics.median(seconds),
                "ms_per_trial": 1000 * statistics.median(seconds) / trials,
            }
        )
    best_plain = min(r["ms_per_trial"] for r in rows if r["case"] != "tunefleet")
    defaults = next(r["ms_per_trial"] for r in rows if r["case"] == "Ray Tune, defaults")
    for r in rows:
        r["vs_best_plain_ray"] = r["ms_per_trial"] / best_plain
        r["speedup_vs_defaults"] = defaults / r["ms_per_trial"]
    return rows


def scheduling(
    *, trials: int = 64, work_s: float = 0.5, cpus: int = 2, repeats: int = 3
) -> list[dict[str, Any]]:
    """Ideal time / actual time for `trials` fixed-work trials, through tunefleet and, as
    the reference for what Ray itself allows, a plain Ray Tune script with worker reuse.
    Also the driver process's CPU time per trial (it shares the CPUs with the trials)."""
    constants = {"work_s": work_s}
    cpu: dict[str, list[float]] = {}

    def timed(case: str, run: Callable[[], float]) -> float:
        before = _cpu_s()
        elapsed = run()
        cpu.setdefault(case, []).append(_cpu_s() - before)
        return elapsed

    cases: dict[str, Callable[[str, str], float]] = {
        "tunefleet": lambda root, name: timed(
            "tunefleet",
            lambda: _tunefleet(root, name, f"{__name__}:busy", trials, constants),
        ),
        "Ray Tune, reuse_actors=True": lambda root, name: timed(
            "Ray Tune, reuse_actors=True",
            lambda: _plain_ray(root, name, busy, trials, constants, reuse=True),
        ),
    }
    ideal = trials * work_s / cpus
    rows: list[dict[str, Any]] = []
    for case, seconds in _interleaved(cases, repeats).items():
        actual = statistics.median(seconds)
        rows.append(
            {
                "case": case,
                "trials": trials,
                "work_s": work_s,
                "cpus": cpus,
                "ideal_s": ideal,
                "runs_s": seconds,
                "median_s": actual,
                "efficiency": ideal / actual,
                "driver_cpu_ms_per_trial": 1000 * statistics.median(cpu[case]) / trials,
            }
        )
    return rows


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _interleaved(
    cases: dict[str, Callable[[str, str], float]], repeats: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory(prefix="tunefleet-bench-") as root:
        for r in range(repeats):
            for i, (case, run) in enumerate(cases.items()):
                times[case].append(run(root, f"case{i}-run{r}"))
    return times


def markdown_overhead(rows: list[dict[str, Any]]) -> str:
    """The overhead figures as a markdown table."""
    lines = [
        "| case | ms per trial (median) | vs best plain Ray | faster than Ray defaults |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['ms_per_trial']:.1f} | {r['vs_best_plain_ray']:.2f}x "
            f"| {r['speedup_vs_defaults']:.1f}x |"
        )
    r0 = rows[0]
    lines.append(
        f"\n({r0['trials']} trials x {r0['results_per_trial']} results, "
        f"median of {len(r0['runs_s'])} runs each, one Ray instance)"
    )
    return "\n".join(lines)


def markdown_scheduling(rows: list[dict[str, Any]]) -> str:
    """The scheduling-efficiency figures as a markdown table."""
    lines = [
        "| case | ideal s | actual s (median) | efficiency | driver CPU ms per trial |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['ideal_s']:.1f} | {r['median_s']:.1f} | {r['efficiency']:.2f} "
            f"| {r['driver_cpu_ms_per_trial']:.0f} |"
        )
    r0 = rows[0]
    lines.append(
        f"\n({r0['trials']} trials x {r0['work_s']} s busy work on {r0['cpus']} CPUs, "
        f"median of {len(r0['runs_s'])} runs)"
    )
    return "\n".join(lines)


def init_ray(cpus: int) -> None:
    """Starts the one local Ray instance the in-process cases share (quietly)."""
    import logging

    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
