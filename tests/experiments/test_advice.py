"""Warnings on valid specs (experiments/spec/advice.py) and the `seed` every wrapper trial gets."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.support.specs import spec_dict
from tunefleet.experiments.cli import main
from tunefleet.experiments.spec.advice import advise, parallel_trials
from tunefleet.experiments.spec.loading import validate_spec
from tunefleet.experiments.spec.plan import make_plan
from tunefleet.search.space import Const


def _spec(**extra: Any) -> Any:
    return validate_spec(spec_dict(**extra))


def test_linear_scale_over_two_decades_warns() -> None:
    spec = _spec(space={"lr": {"uniform": [1e-4, 0.1]}, "n": {"randint": [1, 500]}})
    lines = advise(spec)
    assert len(lines) == 2
    assert lines[0].startswith("space.lr: uniform over [0.0001, 0.1] spans 3.0 decades")
    assert lines[0].endswith("use loguniform.")
    assert lines[1].startswith("space.n: randint over [1, 500] spans 2.7 decades")
    assert lines[1].endswith("use lograndint.")


@pytest.mark.parametrize(
    "param",
    [
        {"uniform": [0.01, 1.0]},  # exactly two decades
        {"uniform": [0.0, 100.0]},  # not positive: a log scale cannot hold 0
        {"loguniform": [1e-5, 1.0]},
        {"choice": [0.001, 1.0]},
    ],
)
def test_no_scale_warning(param: dict[str, Any]) -> None:
    assert advise(_spec(space={"p": param})) == []


def test_budget_warning_only_when_the_spec_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)  # a machine of 4 CPUs; the spec caps at 2
    per_trial = 10.0
    spec = _spec(
        search={"num_samples": 8, "time_budget_s": 15, "max_concurrent": 2},
        stop={"time_total_s": per_trial},
    )
    assert parallel_trials(spec) == 2
    wall = 40.0  # 8 trials, 2 at a time, 10 s each
    assert advise(spec) == [
        "search.time_budget_s: 15 s cannot finish 8 trials of stop.time_total_s=10 s "
        "(2 at a time need 40 s); raise it to 40 or lower num_samples."
    ]
    enough = _spec(
        search={"num_samples": 8, "time_budget_s": wall, "max_concurrent": 2},
        stop={"time_total_s": per_trial},
    )
    assert advise(enough) == []
    # Without a per-trial bound the trial time is unknown: no guess, no warning.
    assert advise(_spec(search={"num_samples": 1000, "time_budget_s": 1})) == []
    # An early-stopping scheduler may end trials before their bound.
    asha = _spec(
        search={"num_samples": 8, "time_budget_s": 15},
        stop={"time_total_s": per_trial},
        scheduler={"name": "asha", "time_attr": "time_total_s", "max_t": 10},
    )
    assert advise(asha) == []


def test_fifo_on_an_iterative_trainable_warns() -> None:
    message = "scheduler: fifo runs every trial of this iterative trainable to its end"
    spec = _spec(stop={"training_iteration": 5})
    assert advise(spec)[0].startswith(message)
    asha = _spec(stop={"training_iteration": 5}, scheduler={"name": "asha"})
    assert advise(asha) == []
    one = _spec(stop={"training_iteration": 1})
    assert advise(one) == []
    repeated = _spec(stop={"training_iteration": 5}, search={"repeat": 2})
    assert advise(repeated) == []
    # No stop: a function trainable may report once; the PyTorch wrapper iterates.
    torch_spec = _spec(trainable="tunefleet.trainables.examples.digits:mlp_trainable")
    plan = make_plan(torch_spec, {})
    assert advise(plan.spec, plan.trainable)[0].startswith(message)
    function = make_plan(_spec(), {}).trainable  # tests.support.trainables:linear
    assert advise(torch_spec, function) == []


def test_validate_prints_warnings_on_stderr_and_succeeds(
    write_spec: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_spec(
        """
name: w
trainable: tests.support.trainables:linear
metric: score
mode: max
space:
  x: {uniform: [0.001, 1.0]}
stop: {training_iteration: 3}
"""
    )
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "spec is valid." in out
    lines = err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("warning: ") for line in lines)
    assert "space.x: uniform over [0.001, 1] spans 3.0 decades" in lines[0]
    assert "scheduler: fifo" in lines[1]


def test_wrapper_trials_get_the_search_seed_in_their_config() -> None:
    spec = _spec(
        trainable="tunefleet.trainables.examples.sklearn_models:svc_digits",
        space={"C": {"loguniform": [0.1, 10.0]}},
        search={"seed": 7},
    )
    plan = make_plan(spec, {})
    assert plan.spec.space.params["seed"] == Const(7)
    # A space that sets the seed (or random_state) keeps it; functions get no new key.
    own = _spec(
        trainable="tunefleet.trainables.examples.sklearn_models:svc_digits",
        space={"C": {"loguniform": [0.1, 10.0]}, "random_state": 3},
    )
    assert "seed" not in make_plan(own, {}).spec.space.params
    assert "seed" not in make_plan(_spec(), {}).spec.space.params


def test_gpu_budget_without_gpus_warns() -> None:
    spec = _spec(search={"budget_gpu_hours": 1})
    assert advise(spec) == [
        "search.budget_gpu_hours: trials reserve no GPU (resources.gpu is 0), so this budget is "
        "never spent; use budget_cpu_hours or set resources.gpu."
    ]
    cpu = _spec(search={"num_samples": 4, "budget_cpu_hours": 0.001}, stop={"time_total_s": 10})
    assert advise(cpu)[0].startswith(
        "search.budget_cpu_hours: 0.001 cannot finish 4 trials of stop.time_total_s=10 s on "
        "1 CPU each (0.0111 CPU-hours)"
    )
