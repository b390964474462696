"""Seed policy: epochs a search needs to reach a validation accuracy, with a training seed per
trial against one seed shared by every trial.

The `optuna` case of `benchmarks.time_to_target` seeds trial n's training with n (as an
Optuna objective that seeds by trial number does; one that does not seed draws anew each
trial, the same for this purpose). tunefleet gives every trial the same seed (`search.seed`,
0 unless set: README "Seeds"). This case runs standalone Optuna exactly as that case does
(`workloads.optuna_study`, the same plain loop), in this process, and counts the epochs
trained until the first one reaches the target, for each policy: `per-trial` and `shared-K`
(every trial seeded with K). Epochs, not seconds: the policy changes which configs and
weights are tried, not what an epoch costs.

    python -m benchmarks seed-policy --repeats 8
"""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["epochs_to_target", "markdown", "run", "training_seed"]


class _Reached(Exception):
    """Ends a study at the first epoch at or above the target."""


def training_seed(policy: str, trial_number: int) -> int:
    """The training seed of trial `trial_number` under `policy`: `per-trial` (the trial's
    number) or `shared-K` (K for every trial)."""
    if policy == "per-trial":
        return trial_number
    return int(policy.removeprefix("shared-"))


def epochs_to_target(
    policy: str,
    study_seed: int,
    *,
    trials: int = 150,
    workload: str = "mlp",
    target: float | None = None,
) -> int | None:
    """Epochs trained until one reaches `target` (None: not within `trials`).

    Args:
        policy: See `training_seed`.
        study_seed: The TPE sampler's seed.
        trials: The study's trial cap.
        workload: A `workloads.WORKLOADS` key.
        target: The validation accuracy (default: the workload's).
    """
    import optuna
    import torch

    from benchmarks.workloads import WORKLOADS, epochs, optuna_study, suggest

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    work = WORKLOADS[workload]
    goal = work.target if target is None else target
    trained = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal trained
        config = {name: suggest(trial, name, spec) for name, spec in work.space.items()}
        seed = training_seed(policy, trial.number)
        accuracy = 0.0
        for step, accuracy in enumerate(epochs(config, seed=seed, workload=workload)):
            trained += 1
            if accuracy >= goal:
                raise _Reached
            trial.report(accuracy, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    try:
        optuna_study(study_seed).optimize(objective, n_trials=trials)
    except _Reached:
        return trained
    return None


def run(
    policies: tuple[str, ...] = ("per-trial", "shared-0", "shared-1", "shared-2"),
    *,
    repeats: int = 8,
    trials: int = 150,
    workload: str = "mlp",
    target: float | None = None,
) -> list[dict[str, Any]]:
    """Epochs to the target per policy, one study per seed in `range(repeats)`, and their
    median over the studies that reached it."""
    rows = []
    for policy in policies:
        runs = [
            epochs_to_target(policy, seed, trials=trials, workload=workload, target=target)
            for seed in range(repeats)
        ]
        reached = [r for r in runs if r is not None]
        rows.append(
            {
                "policy": policy,
                "workload": workload,
                "epochs": runs,
                "reached": f"{len(reached)}/{len(runs)}",
                "median_epochs": statistics.median(reached) if reached else None,
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The figures as a markdown table."""
    lines = [
        "| seeds | median epochs to target (studies that reached it) | reached | per study |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        median = "-" if r["median_epochs"] is None else f"{r['median_epochs']:.0f}"
        each = ", ".join("-" if e is None else str(e) for e in r["epochs"])
        lines.append(f"| {r['policy']} | {median} | {r['reached']} | {each} |")
    lines.append(
        f"\n(standalone Optuna, TPE + successive halving, {rows[0]['workload']} workload; "
        "`-`: not reached within the trial cap)"
    )
    return "\n".join(lines)
