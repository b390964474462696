"""Time to a target validation accuracy: tunefleet against standalone Optuna and plain Ray Tune.

Two workloads (`benchmarks.workloads`): `mlp`, the quickstart's MLP on digits, to 0.98
validation accuracy, and `cnn`, a small CNN, to 0.99, where standalone Optuna needs a minute
or more. Each case is a whole process, timed from its start (imports and Ray's start
included) until any trial's validation accuracy first reaches `target`; the process is then
stopped. The cases:

- `tunefleet`: `tunefleet run` on a spec like the quickstart (Optuna TPE + ASHA, 2 trials at
  a time on 2 CPUs), the model trained by tunefleet's `TorchTrainable`.
- `tunefleet-one-at-a-time`: the same spec with `search.max_concurrent: 1`, which is what
  tunefleet ran before every searcher was wrapped in Ray's `ConcurrencyLimiter` (Ray Tune
  then let a model-based searcher have one pending trial, so trials ran one after another):
  the "before" of the parallel-searchers fix, in the same run.
- `optuna`: standalone Optuna, TPE sampler and successive-halving pruner, sequential.
- `optuna-n_jobs=2`: the same with `n_jobs=2` (threads; torch at one thread each).
- `ray-defaults`: a plain Ray Tune script with Ray's defaults (random search, FIFO).
- `ray-floor`: no Ray Tune run and no search (`benchmarks.ray_floor`): the driver imports only
  Ray and starts it, and two Ray tasks (one per CPU) train one fixed config each. Its first
  epoch is about the earliest any tool that starts Ray and trains in Ray's worker processes
  can have one on this machine.

Optuna and Ray train the same model on the same data with a plain loop written as their
users would; every process records (time, accuracy) after each epoch in a file the harness
watches (`TUNEFLEET_BENCH_EVENTS`), and the steps before the first epoch in a timeline file
(`TUNEFLEET_TIMELINE`: `imports_done`, `ray_up`, `data_loaded`, `fit_started` as they apply).

    python -m benchmarks time-to-target time-to-target-cnn --repeats 3
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.workloads import EVENTS_ENV, WORKLOADS, epochs, optuna_study, suggest
from tunefleet.common.timeline import TIMELINE_ENV, mark
from tunefleet.common.timeline import read as read_timeline

__all__ = ["CASES", "STEPS", "markdown", "measure", "run"]

CASES = (
    "tunefleet",
    "tunefleet-one-at-a-time",
    "optuna",
    "optuna-n_jobs=2",
    "ray-defaults",
    "ray-floor",
)
_TUNEFLEET_AT_ONCE = {"tunefleet": 2, "tunefleet-one-at-a-time": 1}
STEPS = ("imports_done", "ray_up", "data_loaded", "fit_started", "first_result")


def _optuna_case(trials: int, seed: int, n_jobs: int, workload: str) -> None:
    import optuna
    import torch

    mark("imports_done")
    if n_jobs > 1:
        torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = WORKLOADS[workload].space

    def objective(trial: optuna.Trial) -> float:
        config = {name: suggest(trial, name, spec) for name, spec in space.items()}
        accuracy = 0.0
        for step, accuracy in enumerate(epochs(config, seed=trial.number, workload=workload)):
            trial.report(accuracy, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    optuna_study(seed).optimize(objective, n_trials=trials, n_jobs=n_jobs)


def _ray_train(config: dict[str, Any]) -> None:
    from ray import tune

    for accuracy in epochs(config, workload=config.get("workload", "mlp")):
        tune.report({"val_accuracy": accuracy})


def _tune_domain(spec: dict[str, list[Any]]) -> Any:
    from ray import tune

    ((kind, args),) = spec.items()
    if kind == "loguniform":
        return tune.loguniform(args[0], args[1])
    if kind == "uniform":
        return tune.uniform(args[0], args[1])
    if kind == "randint":
        return tune.randint(args[0], args[1] + 1)  # Ray's upper bound is exclusive
    return tune.choice(args)


def _ray_case(trials: int, seed: int, storage: str, workload: str) -> None:
    from ray import tune

    mark("imports_done")
    space = {name: _tune_domain(spec) for name, spec in WORKLOADS[workload].space.items()}
    space["workload"] = workload
    tune.Tuner(
        _ray_train,
        param_space=space,
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", num_samples=trials),
        run_config=tune.RunConfig(name=f"ray-{seed}", storage_path=storage),
    ).fit()


def _tunefleet_spec(
    trials: int, seed: int, workload: str = "mlp", cpus: int = 2, at_once: int | None = None
) -> dict[str, Any]:
    work = WORKLOADS[workload]
    return {
        "name": f"tunefleet-{seed}",
        "trainable": f"benchmarks.workloads:{work.trainable}",
        "metric": "val_accuracy",
        "mode": "max",
        "space": {**work.space, "epochs": work.epochs, "seed": 0},
        "search": {
            "algorithm": "optuna",
            "sampler": "tpe",
            "num_samples": trials,
            "seed": seed,
            "n_initial_points": 8,
            "max_concurrent": at_once or cpus,  # default: one trial per CPU at all times
        },
        "scheduler": {"name": "asha", "grace_period": 3, "reduction_factor": 3},
        "resources": {"cpu": 1},
        "stop": {"training_iteration": work.epochs},
    }


def _command(case: str, trials: int, seed: int, workdir: Path, workload: str = "mlp") -> list[str]:
    if case in _TUNEFLEET_AT_ONCE:
        import yaml

        spec = workdir / "spec.yaml"
        raw = _tunefleet_spec(trials, seed, workload, at_once=_TUNEFLEET_AT_ONCE[case])
        spec.write_text(yaml.safe_dump(raw))
        return [
            sys.executable,
            "-m",
            "tunefleet.experiments",
            "run",
            str(spec),
            "--storage",
            str(workdir / "results"),
        ]
    if case == "ray-floor":
        return [sys.executable, "-m", "benchmarks.ray_floor", workload]
    return [sys.executable, "-m", __name__, case, str(trials), str(seed), str(workdir), workload]


def measure(
    case: str,
    *,
    trials: int,
    seed: int,
    target: float,
    timeout_s: float,
    workload: str = "mlp",
) -> dict[str, Any]:
    """Runs one case in its own process until `target` is reached (or `timeout_s`)."""
    with tempfile.TemporaryDirectory(prefix="tunefleet-ttt-") as tmp:
        workdir = Path(tmp)
        events, timeline = workdir / "events.txt", workdir / "timeline.txt"
        events.touch()
        timeline.touch()
        env = {**os.environ, EVENTS_ENV: str(events), TIMELINE_ENV: str(timeline)}
        log = workdir / "stderr.txt"
        started = time.time()
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(
                _command(case, trials, seed, workdir, workload),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        reached: float | None = None
        epochs_seen, best = 0, 0.0
        try:
            while reached is None and time.time() - started < timeout_s:
                time.sleep(0.05)
                lines = events.read_text().splitlines()
                epochs_seen = len(lines)
                hits = []
                for line in lines:
                    when, accuracy = (float(v) for v in line.split())
                    best = max(best, accuracy)
                    if accuracy >= target:
                        hits.append(when - started)
                reached = min(hits) if hits else None
                if reached is None and proc.poll() is not None:
                    break
        finally:
            _stop(proc)
        if reached is None and proc.returncode != 0 and time.time() - started < timeout_s:
            tail = log.read_text(errors="replace")[-500:]
            raise RuntimeError(f"{case} exited with {proc.returncode}: {tail}")
        first = {step: when - started for step, when in read_timeline(timeline).items()}
    return {
        "case": case,
        "seed": seed,
        "seconds": reached,
        "epochs_seen": epochs_seen,
        "best": best,
        "steps": {step: first.get(step) for step in STEPS},
    }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)  # Ray and tunefleet stop cleanly on Ctrl-C
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run(
    *,
    cases: tuple[str, ...] = CASES,
    trials: int = 150,
    target: float | None = None,
    repeats: int = 3,
    timeout_s: float = 300.0,
    workload: str = "mlp",
) -> list[dict[str, Any]]:
    """Median seconds to `target` (default: the workload's) per case, the runs interleaved
    (one of each per repeat); every figure of a row is the median over its runs."""
    target = WORKLOADS[workload].target if target is None else target
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    for seed in range(repeats):
        for case in cases:
            runs[case].append(
                measure(
                    case,
                    trials=trials,
                    seed=seed,
                    target=target,
                    timeout_s=timeout_s,
                    workload=workload,
                )
            )
    rows: list[dict[str, Any]] = []
    for case, results in runs.items():
        seconds = [r["seconds"] for r in results]
        reached = [s for s in seconds if s is not None]
        # A run that never reached the target counts as the timeout (a lower bound).
        bounded = [s if s is not None else timeout_s for s in seconds]
        steps = {}
        for step in STEPS:
            values = [r["steps"][step] for r in results if r["steps"].get(step) is not None]
            steps[step] = statistics.median(values) if values else None
        rows.append(
            {
                "case": case,
                "workload": workload,
                "target": target,
                "runs_s": seconds,
                "reached": f"{len(reached)}/{len(seconds)}",
                "median_s": statistics.median(bounded),
                "epochs_seen": statistics.median(r["epochs_seen"] for r in results),
                "steps": steps,
            }
        )
    optuna = [r["median_s"] for r in rows if r["case"].startswith("optuna")]
    optuna_best = min(optuna) if optuna else None
    for r in rows:
        r["vs_best_optuna"] = r["median_s"] / optuna_best if optuna_best else None
    return rows


def markdown(rows: list[dict[str, Any]], timeout_s: float = 300.0) -> str:
    """The time-to-target figures as a markdown table."""
    lines = [
        "| case | median s to target | reached | vs best standalone Optuna | epochs run | "
        + " | ".join(STEPS)
        + " |",
        "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in STEPS) + " |",
    ]
    for r in rows:
        ratio = f"{r['vs_best_optuna']:.2f}x" if r["vs_best_optuna"] else "-"
        median = f"{r['median_s']:.1f}"
        if r["case"] == "ray-floor":  # one fixed config, no search: only its steps count
            median, ratio = "- (no search)", "-"
        steps = r.get("steps", {})
        cells = " | ".join("-" if steps.get(s) is None else f"{steps[s]:.1f}" for s in STEPS)
        lines.append(
            f"| {r['case']} | {median} | {r['reached']} | {ratio} "
            f"| {r.get('epochs_seen', 0):.0f} | {cells} |"
        )
    lines.append(
        f"\n({rows[0].get('workload', 'mlp')} workload, validation accuracy >= "
        f"{rows[0]['target']}, whole process from its start (steps: seconds from it), "
        f"median of {len(rows[0]['runs_s'])} seeds; a run that never reached it counts "
        f"as {timeout_s:.0f} s)"
    )
    return "\n".join(lines)


def _main(argv: list[str]) -> None:
    case, trials, seed, workdir = argv[0], int(argv[1]), int(argv[2]), argv[3]
    workload = argv[4] if len(argv) > 4 else "mlp"
    if case == "optuna":
        _optuna_case(trials, seed, n_jobs=1, workload=workload)
    elif case == "optuna-n_jobs=2":
        _optuna_case(trials, seed, n_jobs=2, workload=workload)
    elif case == "ray-defaults":
        _ray_case(trials, seed, storage=f"{workdir}/results", workload=workload)
    else:
        raise SystemExit(f"unknown case {case!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
