"""Hyperopt with the whole space language: log-normal parameters as `hp.lognormal`.

Ray's `HyperOptSearch.convert_search_space` turns Ray's domains into Hyperopt's
(`tune.randn` into `hp.normal`, `tune.qrandn` into `hp.qnormal`, ...), but Ray has no
log-normal domain and so no conversion for tunefleet's (`tunefleet.search.tune_space.
lognormal_domain`). `convert_search_space` here gives those `hp.lognormal` /
`hp.qlognormal` (Hyperopt's own, with mu and sigma of the logarithm, as in the spec) and
leaves every other domain to Ray. `LogNormalHyperOptSearch` is Ray's searcher using it.
"""

from __future__ import annotations

import copy
from typing import Any

from hyperopt import hp
from ray.tune.search.hyperopt import HyperOptSearch

from tunefleet.search.tune_space import LogNormalSampler, lognormal_sampler

__all__ = ["LogNormalHyperOptSearch", "convert_search_space"]


_Found = tuple[tuple[str, ...], LogNormalSampler, float | None]


def _lognormals(spec: dict[str, Any], path: tuple[str, ...] = ()) -> list[_Found]:
    """The path, sampler and step of every log-normal domain in a nested `param_space`."""
    found: list[_Found] = []
    for key, value in spec.items():
        if isinstance(value, dict):
            found += _lognormals(value, (*path, str(key)))
            continue
        lognormal = lognormal_sampler(value)
        if lognormal is not None:
            found.append(((*path, str(key)), *lognormal))
    return found


def _assign(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = spec
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def convert_search_space(spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Ray's `HyperOptSearch.convert_search_space`, plus log-normal domains.

    Args:
        spec: A nested `param_space` of Ray domains and constants.
        prefix: Prepended to Hyperopt's parameter names, `prefix/a/b` (as Ray does).
    """
    lognormals = _lognormals(spec)
    if not lognormals:
        return HyperOptSearch.convert_search_space(spec, prefix=prefix)
    rest = copy.deepcopy(spec)
    for path, _, _ in lognormals:
        _assign(rest, path, None)  # a constant placeholder, replaced below
    # Ray returns {} when nothing is left to search; the constants are then `rest`'s.
    converted = HyperOptSearch.convert_search_space(rest, prefix=prefix) or rest
    for path, sampler, q in lognormals:
        name = "/".join((prefix, *path) if prefix else path)
        if q is None:
            value = hp.lognormal(name, sampler.mu, sampler.sigma)
        else:
            value = hp.qlognormal(name, sampler.mu, sampler.sigma, q)
        _assign(converted, path, value)
    return converted


class LogNormalHyperOptSearch(HyperOptSearch):
    """Ray's `HyperOptSearch`, converting the Tuner's `param_space` with
    `convert_search_space` (which knows tunefleet's log-normal domains)."""

    @staticmethod
    def convert_search_space(spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        return convert_search_space(spec, prefix=prefix)
