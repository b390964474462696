"""Spec validation: every bad spec gets one line that names the key and says what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.specs import BASE, spec_dict
from tunefleet.experiments.spec.loading import SpecError, apply_overrides, load_spec, validate_spec
from tunefleet.experiments.spec.plan import make_plan
from tunefleet.search import AshaSettings, Float
from tunefleet.trainables import TrainableError


def test_a_good_spec_validates_with_defaults() -> None:
    spec = validate_spec(spec_dict(scheduler={"name": "asha", "max_t": 5}))
    assert spec.space.params["x"] == Float(0.0, 1.0)
    assert spec.search.algorithm == "random" and spec.search.trials == 10
    assert isinstance(spec.scheduler, AshaSettings) and spec.scheduler.grace_period == 1
    assert spec.resources.cpu == 1 and spec.resources.gpu == 0


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"metirc": "score"}, r"^metirc: unknown key; did you mean 'metric'\?$"),
        (
            {"search": {"num_sample": 3}},
            r"^search\.num_sample: unknown key; did you mean 'num_samples'\?$",
        ),
        (
            {"scheduler": {"name": "asha", "max_t": 3, "grace_periood": 2}},
            r"^scheduler\.grace_periood: unknown key; did you mean 'grace_period'\?$",
        ),
        ({"resources": {"cpus": 2}}, r"^resources\.cpus: unknown key; did you mean 'cpu'\?$"),
        (
            {"search": {"algorithm": "tpe-ish"}},
            r"^search\.algorithm: 'tpe-ish' is not allowed; choose one of random, grid, hyperopt, optuna, pbt, pb2\.$",
        ),
        ({"search": {"algorithm": "hyperopts"}}, r"did you mean 'hyperopt'\?$"),
        (
            {"scheduler": {"name": "ashaa"}},
            r"^scheduler\.name: 'ashaa' is not allowed; choose one of fifo, asha, hyperband, median; did you mean 'asha'\?$",
        ),
        (
            {"scheduler": {"max_t": 3}},
            r"^scheduler: needs `name:` \(one of fifo, asha, hyperband, median\)\.$",
        ),
        (
            {"search": {"num_samples": "ten"}},
            r"^search\.num_samples: .*valid integer.*got 'ten'\.$",
        ),
        (
            {"search": {"num_samples": 0}},
            r"^search\.num_samples: .*greater than or equal to 1, got 0\.$",
        ),
        ({"mode": "maximize"}, r"^mode: 'maximize' is not allowed; choose one of min, max\.$"),
        ({"metric": None}, r"^metric: required key is missing\.$"),
        ({"resources": {"cpu": 0}}, r"^resources\.cpu: .*greater than 0, got 0\.$"),
        (
            {"space": {"x": {"uniform": [1, 0]}}},
            r"^space\.x\.uniform: `low < high` must hold, but got low=1, high=0\.$",
        ),
        (
            {"space": {"x": {"loguniform": [0, 1]}}},
            r"^space\.x\.loguniform: a log scale needs `low > 0`, but got low=0\.$",
        ),
        (
            {"space": {"x": {"choice": []}}},
            r"^space\.x\.choice: needs a non-empty list of values, got \[\]\.$",
        ),
        (
            {"space": {"x": {"grid": [1, 2]}}, "search": {"algorithm": "optuna"}},
            r"^space\.x: `grid` values cannot be used with search\.algorithm 'optuna'",
        ),
        (
            {"search": {"algorithm": "grid"}},
            r"^search\.algorithm: 'grid' needs at least one `grid:` parameter",
        ),
        (
            {
                "space": {"x": {"grid": [1, 2]}, "y": {"uniform": [0, 1]}},
                "search": {"algorithm": "grid"},
            },
            r"^space\.y: search\.algorithm 'grid' tries fixed values",
        ),
        (
            {"scheduler": {"name": "asha"}},
            r"^scheduler\.max_t: asha needs a budget; set `scheduler\.max_t` or `stop\.training_iteration`\.$",
        ),
        (
            {"scheduler": {"name": "asha", "max_t": 2, "grace_period": 3}},
            r"^scheduler\.grace_period: must be <= max_t, but got grace_period=3, max_t=2\.$",
        ),
        (
            {"search": {"algorithm": "hyperopt", "sampler": "tpe"}},
            r"^search\.sampler: only `algorithm: optuna` takes a sampler",
        ),
        (
            {"trainable": "not a path"},
            r"^trainable: 'not a path' is not an import path; write it as 'package\.module:object'\.$",
        ),
        ({"name": "has space"}, r"^name: 'has space' is not a usable name"),
        (
            {"stop": {"training_iteration": "x"}},
            r"^stop\.training_iteration: .*valid number.*got 'x'\.$",
        ),
        (
            {"search": {"points_to_evaluate": [{"y": 1}]}},
            r"^search\.points_to_evaluate\[0\]\.y: not a parameter of space\.$",
        ),
        # an unknown key named like the section's own kind is still named
        (
            {"scheduler": {"name": "asha", "max_t": 3, "asha": 1}},
            r"^scheduler\.asha: unknown key; allowed keys: brackets, grace_period, max_t,",
        ),
        (
            {"search": {"algorithm": "optuna", "sampler": {"name": "tpe", "tpe": 1}}},
            r"^search\.sampler\.tpe: unknown key; allowed keys: constant_liar,",
        ),
    ],
)
def test_bad_specs_fail_with_one_line(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        validate_spec(spec_dict(**patch))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("trainable", "message"),
    [
        (
            "nope.mod:train",
            r"^trainable: cannot import module 'nope\.mod' \(no module named 'nope'\); check the path",
        ),
        (
            "tests.support.trainables:linea",
            r"^trainable: 'tests\.support\.trainables' has no attribute 'linea'; did you mean 'linear'\?$",
        ),
        (
            "tests.support.trainables:two_args",
            r"^trainable: 'tests\.support\.trainables:two_args' must take exactly one argument",
        ),
        (
            "tests.support.specs:BASE",
            r"^trainable: 'tests\.support\.specs:BASE' is a dict, not a function",
        ),
    ],
)
def test_trainables_that_cannot_run_are_refused(trainable: str, message: str) -> None:
    spec = validate_spec(spec_dict(trainable=trainable))
    with pytest.raises(TrainableError, match=message):
        make_plan(spec, {})


def test_data_parallel_trials_need_a_function_or_torch_trainable() -> None:
    spec = validate_spec(
        spec_dict(trainable="tests.support.trainables:Counter", resources={"workers": 2})
    )
    with pytest.raises(
        TrainableError,
        match=r"^resources\.workers: a class trainable trains on one worker; data-parallel trials need a function trainable or TorchTrainable, or set workers: 1\.$",
    ):
        make_plan(spec, {})
    # A function runs on every worker.
    assert make_plan(validate_spec(spec_dict(resources={"workers": 2})), {}).trainable.data_parallel


def test_overrides_set_nested_values_parsed_as_yaml() -> None:
    raw = apply_overrides(
        BASE, ["search.num_samples=4", "space.x.uniform=[1e-3, 1]", "stop.training_iteration=2"]
    )
    spec = validate_spec(raw)
    assert spec.search.trials == 4
    assert spec.stop == {"training_iteration": 2}
    assert raw["space"]["x"] == {"uniform": [0.001, 1]}
    assert BASE["space"] == {"x": {"uniform": [0, 1]}}, "overrides must not touch the input"
    both = apply_overrides(BASE, ["space.x.loguniform=[1e-3, 1]"])
    assert both["space"]["x"] == {"uniform": [0, 1], "loguniform": [0.001, 1]}
    with pytest.raises(
        SpecError,
        match=r"^space\.x: 'uniform' names a distribution, but sits beside other keys "
        r"\('loguniform'\); give a parameter one distribution, or write a constant as "
        r"`uniform: \{const: \.\.\.\}`\.$",
    ):
        validate_spec(both)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("search", r"^--set 'search': write it as key\.path=value"),
        ("=3", r"write it as key\.path=value"),
        ("name.first=1", r"^--set name\.first: 'name' is 't', not a mapping\.$"),
        ("space.x=[1,", r"^--set space\.x: not valid YAML"),
    ],
)
def test_malformed_overrides_are_refused(override: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        apply_overrides(BASE, [override])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name: [1\n", r"spec\.yaml:\d+: not valid YAML"),
        (b"- 1\n- 2\n", r"a spec must be a mapping of keys .*, got a YAML list\.$"),
        (b"", r"got an empty file\.$"),
        (b"name: a\nname: b\n", r"spec\.yaml:2: not valid YAML \(duplicate key 'name'\)\.$"),
        (b"name: \xff\xfe\n", r"not UTF-8 text \(bad byte at offset 6\)\.$"),
        (b"x: !!python/object/apply:os.system ['true']\n", r"not valid YAML"),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_yaml_1_2_numbers_are_floats() -> None:
    from tunefleet.experiments.spec.loading import parse_yaml

    assert parse_yaml("a: 1e-4\nb: 3\nc: .5\nd: 1.0e+2\ne: 1_000\n", source="s") == {
        "a": 1e-4,
        "b": 3,
        "c": 0.5,
        "d": 100.0,
        "e": 1000,
    }


def test_missing_file() -> None:
    with pytest.raises(SpecError, match=r"no-such\.yaml: no such file\.$"):
        load_spec("no-such.yaml")


def test_shipped_examples_validate() -> None:
    root = Path(__file__).resolve().parents[2] / "experiments"
    paths = sorted(root.glob("*.yaml"))
    assert len(paths) >= 5, paths  # the quickstart and the other shipped examples
    for path in paths:
        spec, _ = load_spec(path)
        make_plan(spec, {})
