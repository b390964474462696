"""`python -m benchmarks [CASE ...] [--repeats N] [--json FILE]`.

Runs the cases side by side on this machine and prints one markdown section each, then
writes every figure to a JSON file. The cases (default: all but `scale`):

- `overhead`: ms per do-nothing trial, tunefleet against plain Ray Tune scripts, with random
  search and with Optuna's TPE (`--searchers`).
- `scheduling`: 64 trials of 0.5 s work on 2 CPUs, ideal time / actual time, with each of
  `--searchers`.
- `time-to-target`: seconds to a validation accuracy on digits, tunefleet (2 trials at once,
  and 1 at a time as before the parallel-searchers fix) against standalone Optuna
  (sequential and n_jobs=2) and plain Ray Tune with defaults; `ray-floor` times Ray's start
  and a first epoch in its workers without Ray Tune or a search.
- `fixed-cost`: a 2-trial no-op run as a whole process, `tunefleet run` against a plain Ray
  Tune script at its best: wall, CPU of every process, driver peak memory, and the time to
  each start-up step.
- `warm-start`: the same through `tunefleet run --address` on a running `ray start --head`.
- `time-to-target-cnn`: time to 0.99 on the digits CNN, where standalone Optuna needs a
  minute or more (opt-in: several minutes a run).
- `seed-policy` (opt-in): epochs standalone Optuna needs to reach the time-to-target
  accuracy with a training seed per trial against one seed shared by all trials.
- `search`: median regret of each searcher on functions with known minima, trials run one
  after another and `--search-parallel` at a time.
- `export`: 1,000,000 iteration rows through the results recorder against pyarrow writing
  the same tables (from the same Ray results, and from the finished rows).
- `scale` (opt-in, long): 10,000 one-iteration trials; throughput and driver memory.
- `soak` (opt-in): 2,000 one-iteration trials; checks the Parquet rows and driver memory.
- `elastic` (opt-in): a default Optuna spec on Ray's fake autoscaler: time from a pending
  trial to a trial on a new node, and the share of slots busy 10 s after each node joins.
- `gpu` (opt-in): GPU trials (one per GPU, two sharing one, AMP, 2 workers where 2 GPUs are
  visible) per epoch against the same loop in plain PyTorch; one line where no GPU is.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_CASES = (
    "overhead",
    "scheduling",
    "fixed-cost",
    "warm-start",
    "time-to-target",
    "search",
    "export",
)
ALL_CASES = (
    *DEFAULT_CASES,
    "time-to-target-cnn",
    "seed-policy",
    "scale",
    "soak",
    "elastic",
    "gpu",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="tunefleet's benchmarks, side by side with plain Ray Tune and Optuna.",
    )
    parser.add_argument(
        "cases", nargs="*", help=f"of {', '.join(ALL_CASES)}; default: all but scale"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs for the in-process Ray")
    parser.add_argument("--json", type=Path, default=Path("benchmark-results.json"))
    parser.add_argument(
        "--target", type=float, help="time-to-target accuracy (default: 0.98 MLP, 0.99 CNN)"
    )
    parser.add_argument("--ttt-trials", type=int, default=150, help="time-to-target trial cap")
    parser.add_argument("--ttt-timeout", type=float, default=300.0)
    parser.add_argument("--ttt-cnn-timeout", type=float, default=600.0)
    parser.add_argument(
        "--ttt-cases",
        help="time-to-target cases, comma-separated (default: all)",
    )
    parser.add_argument("--search-trials", type=int, default=100)
    parser.add_argument("--search-seeds", type=int, default=5)
    parser.add_argument(
        "--search-parallel", type=int, default=4, help="trials at once in the parallel rows"
    )
    parser.add_argument(
        "--searchers",
        default="random,optuna",
        help="overhead and scheduling: comma-separated, of random and optuna (TPE)",
    )
    parser.add_argument("--sched-trials", type=int, default=64)
    parser.add_argument("--sched-work-s", type=float, default=0.5)
    parser.add_argument("--scale-trials", type=int, default=10_000)
    return parser


def _machine() -> dict[str, Any]:
    import os

    import ray

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ray": ray.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    cases = args.cases or list(DEFAULT_CASES)
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}; choose from {', '.join(ALL_CASES)}")
    figures: dict[str, Any] = {"machine": _machine()}
    m = figures["machine"]
    print(
        f"# tunefleet benchmarks\n\n{m['cpus']} CPUs, Python {m['python']}, Ray {m['ray']}, "
        f"{m['platform']}, {m['date']}\n"
    )
    for case in cases:
        started = time.perf_counter()
        text = _run_case(case, args, figures)
        print(f"## {case}\n\n{text}\n\n({time.perf_counter() - started:.0f} s)\n", flush=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    print(f"figures: {args.json}")
    return 0


def _run_case(case: str, args: argparse.Namespace, figures: dict[str, Any]) -> str:
    if case in ("overhead", "scheduling"):
        from benchmarks import overhead

        overhead.init_ray(args.cpus)
        searchers = [s.strip() for s in args.searchers.split(",") if s.strip()]
        rows: list[dict[str, Any]] = []
        if case == "overhead":
            for searcher in searchers:
                rows += overhead.overhead(repeats=args.repeats, searcher=searcher)
            figures[case] = rows
            return overhead.markdown_overhead(rows)
        for searcher in searchers:
            rows += overhead.scheduling(
                trials=args.sched_trials,
                work_s=args.sched_work_s,
                cpus=args.cpus,
                repeats=args.repeats,
                searcher=searcher,
            )
        figures[case] = rows
        return overhead.markdown_scheduling(rows)
    if case in ("time-to-target", "time-to-target-cnn"):
        from benchmarks import time_to_target

        cnn = case == "time-to-target-cnn"
        timeout = args.ttt_cnn_timeout if cnn else args.ttt_timeout
        chosen = tuple(c for c in (args.ttt_cases or "").split(",") if c)
        figures[case] = time_to_target.run(
            cases=chosen or time_to_target.CASES,
            trials=args.ttt_trials,
            target=args.target,
            repeats=args.repeats,
            timeout_s=timeout,
            workload="cnn" if cnn else "mlp",
        )
        return time_to_target.markdown(figures[case], timeout)
    if case == "seed-policy":
        from benchmarks import seed_policy

        figures[case] = seed_policy.run(repeats=args.repeats, trials=args.ttt_trials)
        return seed_policy.markdown(figures[case])
    if case == "fixed-cost":
        from benchmarks import fixed_cost

        figures[case] = fixed_cost.run(repeats=args.repeats)
        return fixed_cost.markdown(figures[case], title="2 no-op trials, 5 results each")
    if case == "warm-start":
        from benchmarks import warm_start

        figures[case] = warm_start.run(repeats=args.repeats, cpus=args.cpus)
        return warm_start.markdown(figures[case], figures.get("fixed-cost"))
    if case == "search":
        from benchmarks import search_quality

        figures[case] = search_quality.run(
            list(search_quality.SEARCHERS),
            ["branin", "hartmann6"],
            args.search_trials,
            args.search_seeds,
            parallel=(1, args.search_parallel),
        )
        return search_quality.markdown(figures[case], args.search_seeds)
    if case == "export":
        from benchmarks import export_speed

        figures[case] = export_speed.run(repeat=args.repeats)
        return _export_markdown(figures[case])
    if case == "elastic":
        from benchmarks import elastic

        figures[case] = elastic.run(repeats=args.repeats)
        return elastic.markdown(figures[case])
    if case == "gpu":
        from benchmarks import gpu

        figures[case] = gpu.run(repeats=args.repeats)
        return gpu.markdown(figures[case])
    if case == "soak":
        from benchmarks import soak

        figures[case] = soak.run(cpus=args.cpus)
        return soak.markdown(figures[case])
    from benchmarks import scale

    figures[case] = scale.run(trials=args.scale_trials, cpus=args.cpus)
    return scale.markdown(figures[case])


def _export_markdown(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| writer | wall s | CPU s | peak memory (MiB) |",
            "| --- | --- | --- | --- |",
            f"| tunefleet ResultsRecorder (every result + flush) | {f['recorder_s']:.2f} "
            f"| {f['recorder_cpu_s']:.2f} | {f['recorder_peak_mib']:.0f} |",
            "| pyarrow from the same Ray results (callback keeps them, from_pylist with schema "
            f"+ write_table) | {f['pyarrow_s']:.2f} | {f['pyarrow_cpu_s']:.2f} "
            f"| {f['pyarrow_peak_mib']:.0f} |",
            f"| pyarrow from the finished rows (from_pylist + write_table) | {f['rows_s']:.2f} "
            f"| {f['rows_cpu_s']:.2f} | {f['rows_peak_mib']:.0f} |",
            f"\n({f['rows']:,} iteration rows; recorder / pyarrow from the same results: "
            f"{f['ratio']:.2f}x CPU, {f['wall_ratio']:.2f}x wall, target <= "
            f"{f['target_ratio']}x; recorder / pyarrow from finished rows: "
            f"{f['rows_ratio']:.2f}x CPU; {f['per_result_us']:.1f} us per result on the driver)",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
