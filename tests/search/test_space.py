"""The space language: parsing, typed parameters, and one-line errors."""

from __future__ import annotations

import pytest

from tunefleet.search import Choice, Const, Float, Int, Normal, SpaceError, parse_space


def test_every_distribution_parses_to_its_typed_parameter() -> None:
    space = parse_space(
        {
            "a": {"uniform": [0.0, 1.0]},
            "b": {"loguniform": [1e-4, 1e-1]},
            "c": {"quniform": [0.0, 1.0, 0.25]},
            "d": {"qloguniform": [0.5, 8.0, 0.5]},
            "e": {"randint": [1, 5]},
            "f": {"qrandint": [0, 100, 10]},
            "g": {"lograndint": [1, 1024]},
            "h": {"choice": ["adam", 3, [1, 2], {"k": 1}]},
            "i": {"grid": [1, 2, 3]},
            "j": 7,
            "k": {"const": {"uniform": "kept as data"}},
        }
    )
    p = space.params
    assert p["a"] == Float(0.0, 1.0)
    assert p["b"] == Float(1e-4, 1e-1, log=True)
    assert p["c"] == Float(0.0, 1.0, q=0.25)
    assert p["d"] == Float(0.5, 8.0, log=True, q=0.5)
    assert p["e"] == Int(1, 5)
    assert p["f"] == Int(0, 100, q=10)
    assert p["g"] == Int(1, 1024, log=True)
    assert p["h"] == Choice(("adam", 3, [1, 2], {"k": 1}))
    assert p["i"] == Choice((1, 2, 3), grid=True)
    assert p["j"] == Const(7)
    assert p["k"] == Const({"uniform": "kept as data"})
    assert set(space.searched) == set("abcdefghi")
    assert space.grid_size() == 3


def test_bounds_may_be_given_by_name() -> None:
    space = parse_space({"lr": {"loguniform": {"low": 1e-3, "high": 1.0}}})
    assert space.params["lr"] == Float(1e-3, 1.0, log=True)


def test_nested_groups_flatten_with_slashes() -> None:
    space = parse_space({"model": {"depth": {"randint": [1, 3]}, "act": "relu"}, "lr": 0.1})
    assert list(space.params) == ["model/depth", "model/act", "lr"]
    assert space.params["model/depth"] == Int(1, 3)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"lr": {"uniform": [1.0, 1.0]}},
            r"space\.lr\.uniform: `low < high` must hold, but got low=1, high=1",
        ),
        ({"lr": {"uniform": [2.0, 1.0]}}, r"`low < high` must hold"),
        (
            {"lr": {"loguniform": [0.0, 1.0]}},
            r"space\.lr\.loguniform: a log scale needs `low > 0`, but got low=0",
        ),
        ({"lr": {"loguniform": [-1, 1.0]}}, r"a log scale needs `low > 0`"),
        (
            {"n": {"randint": [5, 2]}},
            r"space\.n\.randint: `low < high` must hold, but got low=5, high=2",
        ),
        ({"n": {"randint": [1.5, 4]}}, r"`low` must be an integer, got 1\.5"),
        ({"n": {"lograndint": [0, 8]}}, r"a log scale needs `low >= 1`"),
        (
            {"opt": {"choice": []}},
            r"space\.opt\.choice: needs a non-empty list of values, got \[\]",
        ),
        ({"opt": {"grid": "adam"}}, r"space\.opt\.grid: needs a non-empty list"),
        ({"lr": {"uniform": [0.0]}}, r"space\.lr\.uniform: takes \[low, high\], got \[0\.0\]"),
        ({"lr": {"uniform": ["a", 1]}}, r"`low` must be a number, got 'a'"),
        ({"lr": {"uniform": [0, float("inf")]}}, r"`high` must be finite"),
        ({"lr": {"quniform": [0.0, 1.0, 0.3]}}, r"`high` must be a multiple of q=0\.3"),
        ({"lr": {"quniform": [0.0, 1.0, -1]}}, r"the step `q` must be > 0"),
        ({"n": {"qrandint": [1, 10, 5]}}, r"must be multiples of q=5"),
        (
            {"lr": {"logunifrom": [1e-4, 1e-1]}},
            r"space\.lr: 'logunifrom' is not a distribution; did you mean 'loguniform'\?",
        ),
        (
            {"lr": {"uniform": {"low": 0, "hi": 1}}},
            r"unknown key 'hi'; uniform takes \[low, high\]",
        ),
        (
            {"x0": {"gaussian": [0.5, 0.1]}},
            r"^space\.x0: 'gaussian' is not a distribution; choose one of uniform, quniform, "
            r"loguniform, qloguniform, randint, qrandint, lograndint, normal, qnormal, lognormal, "
            r"qlognormal, choice, grid, const \(for a constant list in a group, write "
            r"`x0: \{const: \{gaussian: \[\.\.\.\]\}\}`\)\.$",
        ),
        ({"model": {"layers": [64, 64]}}, r"^space\.model: 'layers' is not a distribution"),
        (
            {"m": {"x": {"normal": [0, 1], "grid": [1, 2]}}},
            r"^space\.m\.x: 'normal' names a distribution, but sits beside other keys \('grid'\)",
        ),
        ({"a/b": 1}, r"parameter names must be non-empty strings without '/'"),
        ({"grp": {}}, r"space\.grp: an empty mapping is neither a parameter nor a group"),
        (["lr"], r"space: must be a mapping of parameter names, got list"),
    ],
)
def test_bad_parameters_get_one_line_naming_the_key(raw: object, message: str) -> None:
    with pytest.raises(SpaceError, match=message) as info:
        parse_space(raw)
    assert "\n" not in str(info.value)


def test_describe_lists_each_parameter_once() -> None:
    lines = parse_space({"lr": {"loguniform": [1e-4, 1e-1]}, "n": {"randint": [1, 4]}}).describe()
    assert lines == ["lr  loguniform[0.0001, 0.1]", "n   randint[1, 4] (inclusive)"]


def test_a_one_key_mapping_holding_a_list_is_a_distribution_never_a_constant() -> None:
    assert parse_space({"x0": {"normal": [0.5, 0.1]}}).params == {"x0": Normal(0.5, 0.1)}
    # Groups of constants stay writable: scalar values, `const:`, or more than one key.
    space = parse_space(
        {
            "a": {"depth": 2},
            "b": {"const": {"layers": [64, 64]}},
            "c": {"layers": {"const": [64, 64]}},
            "d": {"layers": [64, 64], "act": "relu"},
            "e": {"inner": {"width": 8}},
        }
    )
    assert space.params == {
        "a/depth": Const(2),
        "b": Const({"layers": [64, 64]}),
        "c/layers": Const([64, 64]),
        "d/layers": Const([64, 64]),
        "d/act": Const("relu"),
        "e/inner/width": Const(8),
    }
