"""`space_to_raw` writes a parsed space back as a `space:` mapping that parses into the same
space: every distribution, groups, constants (mappings too) and conditional choices."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tunefleet.search import parse_space
from tunefleet.search.space import Int, Space, SpaceError
from tunefleet.search.space_writer import space_to_raw

SPACES: list[dict[str, Any]] = [
    {
        "lr": {"loguniform": [1.0e-4, 1.0e-1]},
        "momentum": {"uniform": [0.0, 0.99]},
        "step": {"quniform": [0.0, 1.0, 0.25]},
        "scale": {"qloguniform": [1.0, 64.0, 1.0]},
        "hidden": {"randint": [32, 256]},
        "width": {"qrandint": [8, 64, 8]},
        "units": {"lograndint": [1, 1024]},
        "dropout": {"normal": [0.3, 0.05]},
        "noise": {"qnormal": [0.0, 1.0, 0.1]},
        "decay": {"lognormal": [-5.0, 1.0]},
        "rate": {"qlognormal": [0.0, 1.0, 0.5]},
        "optimizer": {"choice": ["adam", "sgd"]},
        "depth": {"grid": [1, 2, 3]},
        "epochs": 20,
        "tags": ["a", "b"],
        "nothing": None,
        "options": {"const": {"a": 1}},
        "model": {"layers": {"randint": [1, 3]}, "act": "relu"},
    },
    {
        "optimizer": {
            "choice": {
                "sgd": {"lr": {"loguniform": [1.0e-4, 1.0e-1]}, "momentum": {"uniform": [0, 1]}},
                "adam": {"lr": {"loguniform": [1.0e-4, 1.0e-2]}},
                "rmsprop": {},
            }
        },
        "epochs": 3,
    },
]


@pytest.mark.parametrize("raw", SPACES)
def test_a_written_space_reads_back_the_same(raw: dict[str, Any]) -> None:
    space = parse_space(raw)
    written = space_to_raw(space)
    assert parse_space(yaml.safe_load(yaml.safe_dump(written, sort_keys=False))) == space


def test_a_parameter_the_language_cannot_write_is_refused() -> None:
    with pytest.raises(SpaceError, match=r"has no keyword in the spec language\.$"):
        space_to_raw(Space({"n": Int(1, 8, log=True, q=2)}))
