"""Population-based training's exploit history, read from Ray's own PBT log.

Ray's `PopulationBasedTraining` appends one line per exploit to a log in the experiment's
folder, naming trials by their original experiment tag (its file and row layout are
Ray's, read by `tunefleet.common.ray_compat`). This module turns those rows into rows keyed
by trial id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunefleet.common.ray_compat import parse_pbt_log
from tunefleet.experiments.results.parquet_io import flatten

__all__ = ["changes", "read_exploits"]


def read_exploits(log_path: str | Path, tag_to_id: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per exploit: which trial copied which, at what iterations, into what config.

    Args:
        log_path: Ray's PBT log (`tunefleet.common.ray_compat.pbt_log_path(trial)`).
        tag_to_id: Each trial's original experiment tag -> its trial id.
    """
    path = Path(log_path)
    if not path.exists():
        return []
    rows = []
    for exploit in parse_pbt_log(path.read_text()):
        row: dict[str, Any] = {
            "trial_id": tag_to_id.get(exploit.target_tag, exploit.target_tag),
            "training_iteration": exploit.target_iteration,
            "cloned_from": tag_to_id.get(exploit.cloned_tag, exploit.cloned_tag),
            "cloned_iteration": exploit.cloned_iteration,
        }
        row["changed"] = changes(exploit.cloned_config, exploit.new_config)
        row.update({f"config/{k}": v for k, v in flatten(exploit.new_config).items()})
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
