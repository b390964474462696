"""Population-based training's exploit history, read from Ray's own PBT log.

Ray's `PopulationBasedTraining` appends one JSON line per exploit to `pbt_global.txt` in the
experiment's folder: `[target tag, cloned tag, target iteration, cloned iteration,
cloned config, new config]`, with trials named by their original experiment tag. This module
turns those lines into rows keyed by trial id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunefleet.experiments.results.parquet_io import flatten

__all__ = ["PBT_LOG", "changes", "read_exploits"]

PBT_LOG = "pbt_global.txt"


def read_exploits(
    experiment_path: str | Path, tag_to_id: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One row per exploit: which trial copied which, at what iterations, into what config.

    Args:
        experiment_path: The folder Ray writes `pbt_global.txt` into.
        tag_to_id: Each trial's original experiment tag -> its trial id.
    """
    path = Path(experiment_path, PBT_LOG)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            target, cloned, target_iter, cloned_iter, old_config, new_config = json.loads(line)
        except (ValueError, TypeError):
            continue  # a line cut short by a crash
        row: dict[str, Any] = {
            "trial_id": tag_to_id.get(target, target),
            "training_iteration": int(target_iter),
            "cloned_from": tag_to_id.get(cloned, cloned),
            "cloned_iteration": int(cloned_iter),
        }
        row["changed"] = changes(old_config, new_config)
        row.update({f"config/{k}": v for k, v in flatten(new_config).items()})
        rows.append(row)
    return rows


def changes(cloned: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What the exploit changed in the copied config: `lr: 0.01 -> 0.012, ...` (sorted by
    name; empty when it kept the copied trial's config as it was)."""
    before, after = flatten(cloned), flatten(new)
    return ", ".join(
        f"{k}: {_show(before.get(k))} -> {_show(v)}"
        for k, v in sorted(after.items())
        if before.get(k) != v
    )


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
