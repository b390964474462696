"""Population Based Training end to end: trials restore from each other's checkpoints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tunefleet.experiments.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_instance")]

SPEC = Path(__file__).resolve().parents[2] / "experiments" / "pbt_digits.yaml"


@pytest.mark.core
def test_pbt_trials_continue_from_the_checkpoints_they_copy(tmp_path: Path) -> None:
    assert main(["run", str(SPEC), "--storage", str(tmp_path)]) == 0
    exp = tmp_path / "pbt-digits"
    trials = pd.read_parquet(exp / "trials.parquet")
    iterations = pd.read_parquet(exp / "iterations.parquet")
    exploits = pd.read_parquet(exp / "exploits.parquet")

    assert len(trials) == 4 and (trials["status"] == "TERMINATED").all()
    # Synchronous PBT: at most one exploit per trial and perturbation boundary.
    assert 1 <= len(exploits) <= 4 * (16 // 2)
    assert not exploits.duplicated(["trial_id", "training_iteration"]).any()
    assert set(exploits["cloned_from"]) <= set(trials["trial_id"])
    assert (exploits["trial_id"] != exploits["cloned_from"]).all()
    # Each exploit says what it changed in the copied config: only searched keys, each
    # "name: old -> new" with the new value the row's config holds.
    assert exploits["changed"].str.len().gt(0).any()
    for _, row in exploits.iterrows():
        for change in filter(None, row["changed"].split(", ")):
            name, _, values = change.partition(": ")
            assert name in {"lr", "weight_decay"}, row["changed"]
            new = float(values.split(" -> ")[1])
            assert new == pytest.approx(row[f"config/{name}"], rel=1e-3)
    for exploit in exploits.itertuples(index=False):
        # The exploiting trial's next result continued from the cloned trial's checkpoint
        # (the checkpoint names its writer), with the new, perturbed config.
        rows = iterations[iterations["trial_id"] == exploit.trial_id]
        later = rows[rows["training_iteration"] > exploit.training_iteration - 1]
        resumed = later[later["restored_from"] == exploit.cloned_from]
        assert len(resumed) >= 1, (exploit, rows[["training_iteration", "restored_from"]])
        first = resumed.iloc[0]
        assert first["epoch"] == first["training_iteration"] - 1
        assert first["training_iteration"] - 1 >= exploit.cloned_iteration
        assert first["config/lr"] == pytest.approx(exploit_lr(exploits, exploit))
    # Configs change within a trial: the iteration table records each row's config.
    changed = iterations.groupby("trial_id")["config/lr"].nunique()
    assert (changed > 1).any()
    # The learning rate each epoch trained with is the row's config, not the donor's
    # (restoring an optimizer's state would otherwise bring back the donor's lr).
    assert iterations["lr"].notna().all()
    assert (iterations["lr"] == iterations["config/lr"]).all(), iterations[
        ["trial_id", "training_iteration", "lr", "config/lr", "restored_from"]
    ]
    # Perturbed values stay inside the declared range.
    assert iterations["config/lr"].between(1e-4, 1e-1).all()
    assert trials["best/val_accuracy"].max() >= 0.9


def exploit_lr(exploits: pd.DataFrame, exploit: tuple) -> float:
    return float(
        exploits.loc[
            (exploits["trial_id"] == exploit.trial_id)
            & (exploits["training_iteration"] == exploit.training_iteration),
            "config/lr",
        ].iloc[0]
    )
