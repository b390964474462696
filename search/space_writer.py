"""Writing a parsed space back as the `space:` mapping of a spec, which `parse_space` reads
into the same space: for a spec given as a model (`tunefleet.run(ExperimentSpec(...))`),
whose results keep the spec as YAML. Nothing here imports Ray."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunefleet.search.space import (
    DISTRIBUTIONS,
    Choice,
    Conditional,
    Const,
    Float,
    Int,
    Normal,
    Param,
    Space,
    SpaceError,
)

__all__ = ["space_to_raw"]


def space_to_raw(space: Space) -> dict[str, Any]:
    """The `space:` mapping of `space`: groups nested again, each parameter in the words
    the spec language gives it (`{loguniform: [0.0001, 0.1]}`, a constant as its value)."""
    raw: dict[str, Any] = {}
    for path, param in space.params.items():
        *groups, name = path.split("/")
        node = raw
        for group in groups:
            node = node.setdefault(group, {})
        node[name] = _param_to_raw(param)
    return raw


def _param_to_raw(param: Param) -> Any:
    if isinstance(param, Const):
        # A mapping would read as a group (or a distribution): `const:` keeps it whole.
        return {"const": param.value} if isinstance(param.value, Mapping) else param.value
    if isinstance(param, Conditional):
        branches = zip(param.values, param.branches, strict=True)
        return {"choice": {value: space_to_raw(branch) for value, branch in branches}}
    if isinstance(param, Choice):
        return {param.keyword: list(param.values)}
    kind = {Float: "float", Int: "int", Normal: "normal"}[type(param)]
    first, second = (
        (param.mu, param.sigma) if isinstance(param, Normal) else (param.low, param.high)
    )
    wanted = (kind, param.log, param.q is not None)
    keywords = [k for k, v in DISTRIBUTIONS.items() if v == wanted]
    if not keywords:  # a parameter built by hand that the language cannot write
        raise SpaceError("space", f"{param.describe()} has no keyword in the spec language.")
    return {keywords[0]: [first, second] + ([param.q] if param.q is not None else [])}
