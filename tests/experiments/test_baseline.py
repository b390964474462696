"""`baseline:`: a reference trial run before the search, kept apart and compared with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support.specs import spec_dict, spec_yaml
from tests.support.trainables import expected_score
from tunefleet.experiments.analysis.baseline_and_final import improvement
from tunefleet.experiments.analysis.experiment import load
from tunefleet.experiments.analysis.outcome import outcome_table
from tunefleet.experiments.cli import main
from tunefleet.experiments.run.baseline import baseline_config
from tunefleet.experiments.spec.loading import validate_spec

SPEC = spec_yaml(
    name="base",
    space={"x": {"uniform": [0.0, 1.0]}, "offset": {"choice": [0, 10]}, "steps": 2},
    search={"algorithm": "random", "num_samples": 3, "seed": 1},
    baseline={"config": {"x": 0.25, "offset": 0}},
)


def test_baseline_spec_forms() -> None:
    spec = validate_spec(spec_dict(space={"x": {"uniform": [0, 1]}, "k": 3}, baseline="defaults"))
    assert spec.baseline is not None and spec.baseline.config == {}
    assert baseline_config(spec.space, spec.baseline) == {"k": 3}
    nested = validate_spec(
        spec_dict(
            space={"model": {"depth": {"randint": [1, 3]}, "act": "relu"}},
            baseline={"config": {"model": {"depth": 2}}},
        )
    )
    assert nested.baseline is not None
    assert baseline_config(nested.space, nested.baseline) == {"model": {"act": "relu", "depth": 2}}
    with pytest.raises(ValueError, match=r"baseline.config: 'y' is not a searched parameter"):
        validate_spec(spec_dict(space={"x": {"uniform": [0, 1]}}, baseline={"config": {"y": 1}}))
    with pytest.raises(ValueError, match=r"baseline\.confg: unknown key; did you mean 'config'\?"):
        validate_spec(spec_dict(baseline={"confg": {}}))


def test_improvement_is_positive_when_better_for_either_mode() -> None:
    assert improvement(0.9, 0.8, "max") == pytest.approx((0.1, 0.125))
    assert improvement(0.2, 0.4, "min") == pytest.approx((0.2, 0.5))
    assert improvement(1.0, 0.0, "max") == (1.0, None)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_instance")
def test_run_with_baseline_runs_it_first_and_show_compares(
    write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(SPEC)
    storage = tmp_path / "results"
    assert main(["run", str(spec), "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    exp = storage / "base"
    base = pd.read_parquet(exp / "baseline" / "trials.parquet")
    assert len(base) == 1 and base["config/x"].iloc[0] == 0.25
    value = expected_score({"x": 0.25, "offset": 0}, 2)
    assert base["best/score"].iloc[0] == pytest.approx(value)
    trials = pd.read_parquet(exp / "trials.parquet")
    assert len(trials) == 3  # the search's file holds the search alone
    assert base["trial_id"].iloc[0] not in set(trials["trial_id"])
    best = trials["best/score"].max()
    line = f"baseline score = {value:.4g} (trial {base['trial_id'].iloc[0]}); best improves"
    assert line in out
    assert f"by {best - value:+.4g}" in out

    assert main(["show", str(exp)]) == 0
    assert line in capsys.readouterr().out
    table = outcome_table(load(exp))
    assert table is not None
    assert table.loc["baseline", "validation"] == pytest.approx(value)
    assert table.loc["improvement", "validation"] == pytest.approx(best - value)
