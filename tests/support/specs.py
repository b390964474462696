"""Spec dictionaries for tests: one small valid spec, changed per test by keyword.

spec_dict()                                   # the base: `linear`, x uniform in [0, 1]
spec_dict(search={"num_samples": 3})          # a key replaced
spec_dict(metric=None)                        # a key removed
spec_yaml(name="run", space={...})            # the same, as YAML text for a spec file
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

__all__ = ["BASE", "spec_dict", "spec_yaml"]

BASE: dict[str, Any] = {
    "name": "t",
    "trainable": "tests.support.trainables:linear",
    "metric": "score",
    "mode": "max",
    "space": {"x": {"uniform": [0.0, 1.0]}},
}
"""A valid spec: the `linear` test trainable, maximizing `score` over `x`."""


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A fresh copy of `BASE` with top-level keys replaced; a None value removes the key."""
    raw = {**copy.deepcopy(BASE), **copy.deepcopy(overrides)}
    return {key: value for key, value in raw.items() if value is not None}


def spec_yaml(**overrides: Any) -> str:
    """`spec_dict(**overrides)` as the YAML text of a spec file."""
    return yaml.safe_dump(spec_dict(**overrides), sort_keys=False, default_flow_style=None)
