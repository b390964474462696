"""Config keys joined with `/`: nested mappings to flat paths and back.

A spec's space and the results' `config/...` columns name a nested parameter by its path,
`model/depth`; Ray Tune and the trainable see the nested dict `{"model": {"depth": 2}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SEPARATOR", "find_path", "flatten", "nest", "set_path"]

SEPARATOR = "/"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flattens nested mappings with `/` (`{"a": {"b": 1}}` -> `{"a/b": 1}`).

    An empty mapping is a value of its own (`{"a": {}}` stays `{"a": {}}`).

    Args:
        mapping: The nested mapping.
        prefix: Put in front of every path (ending with `/` when not empty).
    """
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path + SEPARATOR))
        else:
            flat[path] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The nested dict of flat paths: `{"model/depth": 2}` -> `{"model": {"depth": 2}}`."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        set_path(nested, path, value)
    return nested


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """Sets `value` at `path` in the nested dict `tree`, adding the dicts on the way."""
    *groups, name = path.split(SEPARATOR)
    node = tree
    for group in groups:
        node = node.setdefault(group, {})
    node[name] = value


def find_path(tree: Mapping[str, Any], path: str) -> tuple[Any, str] | None:
    """The dict holding `path` in `tree` and the last part of `path`, so that
    `node[name]` reads or replaces the value; None when `tree` has no value at `path`."""
    *groups, name = path.split(SEPARATOR)
    node: Any = tree
    for group in groups:
        node = node.get(group)
        if not isinstance(node, dict):
            return None
    return (node, name) if name in node else None
