"""Per-trial overhead and scheduling efficiency, tunefleet against plain Ray Tune scripts.

All cases share one Ray instance started once (`ray.init(num_cpus=2)`), so the figures are
the cost of running trials, not of starting Ray:

- overhead: `trials` do-nothing trials of `results` results each, through tunefleet (a spec
  run by `run_plan`), through a plain `tune.Tuner` with Ray's defaults, and through a plain
  `tune.Tuner` with `reuse_actors=True`. Milliseconds per trial of `Tuner.fit` wall time.
- scheduling: `trials` trials of `work_s` seconds of busy work each through tunefleet, on
  `cpus` CPUs; efficiency = ideal time (`trials * work_s / cpus`) / actual time.

Both run with random search or with Optuna's TPE (`searcher="optuna"`: tunefleet's
`algorithm: optuna`, and a plain `OptunaSearch` with the same sampler, capped at the CPUs
with `max_concurrent_trials` as Ray's docs advise; Ray's defaults are left out there, as
they run such a searcher one trial at a time):

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

__all__ = ["SEARCHERS", "busy", "noop", "overhead", "scheduling"]

SEARCHERS = ("random", "optuna")


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
    root: str,
    name: str,
    trainable: str,
    trials: int,
    constants: dict[str, Any],
    searcher: str = "random",
) -> float:
    from tunefleet.experiments import RunOptions, make_plan, run_plan
    from tunefleet.experiments.spec.loading import validate_spec

    raw = {
        "name": name,
        "trainable": trainable,
        "metric": "score",
        "mode": "max",
        "space": {"x": {"uniform": [0.0, 1.0]}, **constants},
        "search": {"algorithm": searcher, "num_samples": trials, "seed": 0},
    }
    plan = make_plan(validate_spec(raw), raw)
    started = time.perf_counter()
    summary = run_plan(plan, RunOptions(storage=root, name=name, overwrite=True))
    elapsed = time.perf_counter() - started
    if summary.statuses.get("TERMINATED") != trials:
        raise RuntimeError(f"tunefleet run ended with {summary.statuses}, not {trials} trials")
    return elapsed


def _plain_ray(
    root: str,
    name: str,
    fn: Callable[..., Any],
    trials: int,
    constants: dict,
    reuse: bool,
    searcher: str = "random",
) -> float:
    import ray
    from ray import tune

    options: dict[str, Any] = {}
    if searcher == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        # The sampler tunefleet builds for trials in parallel.
        sampler = optuna.samplers.TPESampler(seed=0, multivariate=True, constant_liar=True)
        options = {
            "search_alg": OptunaSearch(sampler=sampler),
            "max_concurrent_trials": int(ray.cluster_resources().get("CPU", 1)),
        }
    tuner = tune.Tuner(
        fn,
        param_space={"x": tune.uniform(0.0, 1.0), **constants},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=trials, reuse_actors=reuse, **options
        ),
        run_config=tune.RunConfig(name=name, storage_path=root, verbose=0),
    )
    started = time.perf_counter()
    grid = tuner.fit()
    elapsed = time.perf_counter() - started
    if grid.num_terminated != trials:
        raise RuntimeError(f"plain Ray run ended with {grid.num_terminated}/{trials} trials")
    return elapsed


def _reuse_case(searcher: str) -> str:
    if searcher == "optuna":
        return "Ray Tune, reuse_actors=True, max_concurrent_trials=CPUs"
    return "Ray Tune, reuse_actors=True"


def overhead(
    *, trials: int = 100, results: int = 5, repeats: int = 3, searcher: str = "random"
) -> list[dict[str, Any]]:
    """Milliseconds per do-nothing trial: tunefleet, plain Ray defaults (random search only),
    plain Ray reuse; with `searcher` (`random` or `optuna`).

    Ray must be initialized. Runs are interleaved (one of each per repeat) so that a slow
    moment of the machine hits every case alike.
    """
    constants = {"results": results}
    cases: dict[str, Callable[[str, str], float]] = {
        "tunefleet": lambda root, name: _tunefleet(
            root, name, f"{__name__}:noop", trials, constants, searcher
        ),
    }
    if searcher == "random":
        cases["Ray Tune, defaults"] = lambda root, name: _plain_ray(
            root, name, noop, trials, constants, reuse=False
        )
    cases[_reuse_case(searcher)] = lambda root, name: _plain_ray(
        root, name, noop, trials, constants, reuse=True, searcher=searcher
    )
    times = _interleaved(cases, repeats)
    rows: list[dict[str, Any]] = []
    for case, seconds in times.items():
        rows.append(
            {
                "case": case,
                "searcher": searcher,
                "trials": trials,
                "results_per_trial": results,
                "runs_s": seconds,
                "median_s": statistics.median(seconds),
                "ms_per_trial": 1000 * statistics.median(seconds) / trials,
            }
        )
    best_plain = min(r["ms_per_trial"] for r in rows if r["case"] != "tunefleet")
    defaults = next((r["ms_per_trial"] for r in rows if r["case"] == "Ray Tune, defaults"), None)
    for r in rows:
        r["vs_best_plain_ray"] = r["ms_per_trial"] / best_plain
        r["speedup_vs_defaults"] = defaults / r["ms_per_trial"] if defaults else None
    return rows


def scheduling(
    *,
    trials: int = 64,
    work_s: float = 0.5,
    cpus: int = 2,
    repeats: int = 3,
    searcher: str = "random",
) -> list[dict[str, Any]]:
    """Ideal time / actual time for `trials` fixed-work trials, through tunefleet and, as
    the reference for what Ray itself allows, a plain Ray Tune script with worker reuse;
    with `searcher` (`random` or `optuna`). Also the driver process's CPU time per trial
    (it shares the CPUs with the trials)."""
    constants = {"work_s": work_s}
    cpu: dict[str, list[float]] = {}

    def timed(case: str, run: Callable[[], float]) -> float:
        before = _cpu_s()
        elapsed = run()
        cpu.setdefault(case, []).append(_cpu_s() - before)
        return elapsed

    reuse = _reuse_case(searcher)
    cases: dict[str, Callable[[str, str], float]] = {
        "tunefleet": lambda root, name: timed(
            "tunefleet",
            lambda: _tunefleet(root, name, f"{__name__}:busy", trials, constants, searcher),
        ),
        reuse: lambda root, name: timed(
            reuse,
            lambda: _plain_ray(root, name, busy, trials, constants, True, searcher),
        ),
    }
    ideal = trials * work_s / cpus
    rows: list[dict[str, Any]] = []
    for case, seconds in _interleaved(cases, repeats).items():
        actual = statistics.median(seconds)
        rows.append(
            {
                "case": case,
                "searcher": searcher,
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
        "| searcher | case | ms per trial (median) | vs best plain Ray "
        "| faster than Ray defaults |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        speedup = r["speedup_vs_defaults"]
        lines.append(
            f"| {r.get('searcher', 'random')} | {r['case']} | {r['ms_per_trial']:.1f} "
            f"| {r['vs_best_plain_ray']:.2f}x | {f'{speedup:.1f}x' if speedup else '-'} |"
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
        "| searcher | case | ideal s | actual s (median) | efficiency | driver CPU ms per trial |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.get('searcher', 'random')} | {r['case']} | {r['ideal_s']:.1f} "
            f"| {r['median_s']:.1f} | {r['efficiency']:.2f} | {r['driver_cpu_ms_per_trial']:.0f} |"
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
