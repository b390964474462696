"""`search.max_concurrent` caps running trials for every algorithm, Ray's variant generator too.

Ray applies `TuneConfig.max_concurrent_trials` only to a `Searcher`; random, grid, PBT and
PB2 use its `BasicVariantGenerator`, which must carry the cap itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tunefleet.experiments.cli import main
from tunefleet.search import FifoSettings, SearchSettings, parse_space
from tunefleet.search.algorithms import build_search
from tunefleet.trainables import report


@pytest.mark.parametrize("algorithm", ["random", "grid", "pbt", "pb2"])
def test_the_variant_generator_carries_max_concurrent(algorithm: str) -> None:
    space = parse_space(
        {"x": {"grid": [1, 2]}} if algorithm == "grid" else {"x": {"uniform": [0.0, 1.0]}}
    )
    capped = build_search(
        SearchSettings(algorithm=algorithm, max_concurrent=2), FifoSettings(), space=space, stop={}
    )
    assert capped.search_alg.max_concurrent == 2
    free = build_search(SearchSettings(algorithm=algorithm), FifoSettings(), space=space, stop={})
    assert free.search_alg.max_concurrent == 0  # Ray's "no limit"


def timed(config: dict[str, Any]) -> None:
    """Reports when it started and ended, a short sleep apart."""
    started = time.time()
    time.sleep(0.4)
    report({"score": config["x"], "started": started, "ended": time.time()})


@pytest.mark.usefixtures("ray_instance")
def test_max_concurrent_one_runs_random_trials_one_after_another(
    write_spec, tmp_path: Path
) -> None:
    spec = write_spec(
        """
name: capped
trainable: tests.search.test_concurrency:timed
metric: score
mode: max
space: {x: {uniform: [0.0, 1.0]}}
search: {algorithm: random, num_samples: 3, seed: 0, max_concurrent: 1}
"""
    )
    assert main(["run", str(spec), "--storage", str(tmp_path)]) == 0
    trials = pd.read_parquet(tmp_path / "capped" / "trials.parquet").sort_values("started")
    assert len(trials) == 3 and (trials["status"] == "TERMINATED").all()
    # The Ray instance has 2 CPUs: without the cap two trials would run side by side.
    starts, ends = trials["started"].to_numpy(), trials["ended"].to_numpy()
    assert (starts[1:] >= ends[:-1]).all(), trials[["trial_id", "started", "ended"]]
