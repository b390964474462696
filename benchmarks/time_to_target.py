"""Time to a target validation accuracy: tunefleet against standalone Optuna and plain Ray Tune.

The workload is the quickstart's: a PyTorch MLP on scikit-learn's digits (train/validation
split of `tunefleet.trainables.examples.digits`), up to `epochs` epochs a trial, searching
lr, batch size, width, dropout, weight decay and optimizer. Each case is a whole process,
timed from its start (imports and Ray's start included) until any trial's validation
accuracy first reaches `target`; the process is then stopped. The cases:

- `tunefleet`: `tunefleet run` on a spec like the quickstart (Optuna TPE + ASHA, 2 trials at
  a time on 2 CPUs), the model trained by tunefleet's `TorchTrainable`.
- `optuna`: standalone Optuna, TPE sampler and successive-halving pruner, sequential.
- `optuna-n_jobs=2`: the same with `n_jobs=2` (threads; torch at one thread each).
- `ray-defaults`: a plain Ray Tune script with Ray's defaults (random search, FIFO).

Optuna and Ray train the same model on the same data with a plain loop written as their
users would; every process records (time, accuracy) after each epoch in a file the harness
watches (`TUNEFLEET_BENCH_EVENTS`).

    python -m benchmarks time-to-target --repeats 3
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["CASES", "epochs", "markdown", "measure", "run", "timed_trainable"]

CASES = ("tunefleet", "optuna", "optuna-n_jobs=2", "ray-defaults")
EVENTS_ENV = "TUNEFLEET_BENCH_EVENTS"
EPOCHS = 20
SPACE: dict[str, Any] = {
    "lr": {"loguniform": [1.0e-4, 3.0e-2]},
    "batch_size": {"choice": [32, 64, 128]},
    "hidden": {"randint": [32, 256]},
    "dropout": {"uniform": [0.0, 0.5]},
    "weight_decay": {"loguniform": [1.0e-6, 1.0e-2]},
    "optimizer": {"choice": ["adam", "adamw", "sgd"]},
}


def _record(accuracy: float) -> None:
    path = os.environ.get(EVENTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short append: atomic enough
            f.write(f"{time.time():.6f} {accuracy:.6f}\n")


def _timed_accuracy(outputs: Any, targets: Any) -> float:
    accuracy = float((outputs.argmax(dim=1) == targets).float().mean())
    _record(accuracy)
    return accuracy


def _timed_trainable() -> Any:
    from tunefleet.trainables.examples.digits import data, mlp
    from tunefleet.trainables.pytorch import TorchTrainable

    return TorchTrainable(
        model=mlp,
        data=data,
        metrics={"accuracy": _timed_accuracy},
        monitor="val_accuracy",
        monitor_mode="max",
    )


timed_trainable = _timed_trainable()


def epochs(config: dict[str, Any], seed: int = 0) -> Iterator[float]:
    """A plain PyTorch loop, as an Optuna or Ray user writes it: validation accuracy per epoch."""
    import torch

    from tunefleet.trainables.examples.digits import mlp, splits

    torch.manual_seed(seed)
    parts = splits()
    x_train, y_train = (torch.from_numpy(a) for a in parts["train"])
    x_val, y_val = (torch.from_numpy(a) for a in parts["val"])
    model = mlp(config)
    lr, wd = float(config["lr"]), float(config["weight_decay"])
    optimizer: torch.optim.Optimizer
    if config["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    elif config["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = int(config["batch_size"])
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(x_val).argmax(dim=1) == y_val).float().mean())
        _record(accuracy)
        yield accuracy


def _optuna_case(trials: int, seed: int, n_jobs: int) -> None:
    import optuna
    import torch

    if n_jobs > 1:
        torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        config = {
            "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
            "hidden": trial.suggest_int("hidden", 32, 256),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "optimizer": trial.suggest_categorical("optimizer", ["adam", "adamw", "sgd"]),
        }
        accuracy = 0.0
        for step, accuracy in enumerate(epochs(config, seed=trial.number)):
            trial.report(accuracy, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=8),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=3, reduction_factor=3),
    )
    study.optimize(objective, n_trials=trials, n_jobs=n_jobs)


def _ray_train(config: dict[str, Any]) -> None:
    from ray import tune

    for accuracy in epochs(config):
        tune.report({"val_accuracy": accuracy})


def _ray_case(trials: int, seed: int, storage: str) -> None:
    from ray import tune

    space = {
        "lr": tune.loguniform(1e-4, 3e-2),
        "batch_size": tune.choice([32, 64, 128]),
        "hidden": tune.randint(32, 257),
        "dropout": tune.uniform(0.0, 0.5),
        "weight_decay": tune.loguniform(1e-6, 1e-2),
        "optimizer": tune.choice(["adam", "adamw", "sgd"]),
    }
    tune.Tuner(
        _ray_train,
        param_space=space,
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", num_samples=trials),
        run_config=tune.RunConfig(name=f"ray-{seed}", storage_path=storage),
    ).fit()


def _tunefleet_spec(trials: int, seed: int) -> dict[str, Any]:
    return {
        "name": f"tunefleet-{seed}",
        "trainable": f"{__name__}:timed_trainable",
        "metric": "val_accuracy",
        "mode": "max",
        "space": {**SPACE, "epochs": EPOCHS, "seed": 0},
        "search": {
            "algorithm": "optuna",
            "sampler": "tpe",
            "num_samples": trials,
            "seed": seed,
            "n_initial_points": 8,
        },
        "scheduler": {"name": "asha", "grace_period": 3, "reduction_factor": 3},
        "resources": {"cpu": 1},
        "stop": {"training_iteration": EPOCHS},
    }


def _command(case: str, trials: int, seed: int, workdir: Path) -> list[str]:
    if case == "tunefleet":
        import yaml

        spec = workdir / "spec.yaml"
        spec.write_text(yaml.safe_dump(_tunefleet_spec(trials, seed)))
        return [
            sys.executable,
            "-m",
            "tunefleet.experiments",
            "run",
            str(spec),
            "--storage",
            str(workdir / "results"),
        ]
    return [sys.executable, "-m", __name__, case, str(trials), str(seed), str(workdir)]


def measure(
    case: str, *, trials: int, seed: int, target: float, timeout_s: float
) -> dict[str, Any]:
    """Runs one case in its own process until `target` is reached (or `timeout_s`)."""
    with tempfile.TemporaryDirectory(prefix="tunefleet-ttt-") as tmp:
        workdir = Path(tmp)
        events = workdir / "events.txt"
        events.touch()
        env = {**os.environ, EVENTS_ENV: str(events)}
        log = workdir / "stderr.txt"
        started = time.time()
        with open(log, "wb") as stderr:
            proc = subprocess.Popen(
                _command(case, trials, seed, workdir),
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
    return {
        "case": case,
        "seed": seed,
        "seconds": reached,
        "epochs_seen": epochs_seen,
        "best": best,
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
    target: float = 0.98,
    repeats: int = 3,
    timeout_s: float = 300.0,
) -> list[dict[str, Any]]:
    """Median seconds to `target` per case, the runs interleaved (one of each per repeat)."""
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    for seed in range(repeats):
        for case in cases:
            runs[case].append(
                measure(case, trials=trials, seed=seed, target=target, timeout_s=timeout_s)
            )
    rows: list[dict[str, Any]] = []
    for case, results in runs.items():
        seconds = [r["seconds"] for r in results]
        reached = [s for s in seconds if s is not None]
        # A run that never reached the target counts as the timeout (a lower bound).
        bounded = [s if s is not None else timeout_s for s in seconds]
        rows.append(
            {
                "case": case,
                "target": target,
                "runs_s": seconds,
                "reached": f"{len(reached)}/{len(seconds)}",
                "median_s": statistics.median(bounded),
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
        "| case | median s to target | reached | vs best standalone Optuna |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        ratio = f"{r['vs_best_optuna']:.2f}x" if r["vs_best_optuna"] else "-"
        lines.append(f"| {r['case']} | {r['median_s']:.1f} | {r['reached']} | {ratio} |")
    lines.append(
        f"\n(validation accuracy >= {rows[0]['target']}, whole process from its start, "
        f"median of {len(rows[0]['runs_s'])} seeds; a run that never reached it counts "
        f"as {timeout_s:.0f} s)"
    )
    return "\n".join(lines)


def _main(argv: list[str]) -> None:
    case, trials, seed, workdir = argv[0], int(argv[1]), int(argv[2]), argv[3]
    if case == "optuna":
        _optuna_case(trials, seed, n_jobs=1)
    elif case == "optuna-n_jobs=2":
        _optuna_case(trials, seed, n_jobs=2)
    elif case == "ray-defaults":
        _ray_case(trials, seed, storage=f"{workdir}/results")
    else:
        raise SystemExit(f"unknown case {case!r}")


if __name__ == "__main__":
    _main(sys.argv[1:])
