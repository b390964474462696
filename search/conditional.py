"""Conditional spaces (a `choice` whose values bring parameters) in each backend's own form.

Hyperopt gets nested `hp.choice` (`hyperopt_space`), Optuna a define-by-run function
(`DefineByRun`: the parameters of a branch are suggested only when its value is drawn).
Inside the backend every parameter has a name of its own, so that a name used in several
branches never clashes: a choice is offered as the index of its value under its path
(`optimizer`), a parameter `lr` under its value `sgd` as `optimizer=sgd/lr`.
`ConditionalSearcher` turns each suggestion back into the flat config the spec describes
(`{"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}`): the branch's parameters beside the
choice, those of other branches absent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Searcher

from tunefleet.common.nesting import nest, set_path
from tunefleet.search.searcher_wrappers import DelegatingSearcher
from tunefleet.search.space import Choice, Conditional, Const, Float, Int, Normal, Space
from tunefleet.search.tune_space import to_tune_param_space

__all__ = ["ConditionalSearcher", "DefineByRun", "decode", "hyperopt_space"]

# Marks the option Hyperopt drew in its suggestion: {BRANCH: index, <branch parameters>}.
BRANCH = "__branch__"


def _plain(space: Space) -> tuple[dict[str, Any], list[str]]:
    """Ray Tune domains of the unconditional searched parameters (choices as indices)."""
    plain = {k: p for k, p in space.params.items() if not isinstance(p, (Const, Conditional))}
    choices = [k for k, p in plain.items() if isinstance(p, Choice)]
    return to_tune_param_space(Space(plain), by_index=choices), choices


def _name(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def _branch(name: str, value: Any) -> str:
    return f"{name}={value}"


# Optuna ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    distributions: dict[str, Any]  # internal name -> Optuna distribution
    choices: tuple[tuple[str, tuple[_Node, ...]], ...]  # choice name -> one node per value


def _optuna_node(space: Space, prefix: str) -> _Node:
    # Optuna (through Ray's searcher) loads only for an Optuna search.
    from ray.tune.search.optuna import OptunaSearch

    domains, _ = _plain(space)
    converted = OptunaSearch.convert_search_space(domains) if domains else {}
    choices = []
    for path, param in space.conditional.items():
        name = _name(prefix, path)
        children = tuple(
            _optuna_node(branch, _branch(name, value))
            for value, branch in zip(param.values, param.branches, strict=True)
        )
        choices.append((name, children))
    return _Node({_name(prefix, k): d for k, d in converted.items()}, tuple(choices))


class DefineByRun:
    """Optuna's define-by-run form of a space, for `OptunaSearch(space=...)`.

    The distributions are Ray's own conversion (`OptunaSearch.convert_search_space`) of
    each branch, so log scales, steps and inclusive integer bounds are the same as for an
    unconditional space.

    Args:
        space: The parsed space (constants are left to the Tuner's `param_space`).
    """

    def __init__(self, space: Space) -> None:
        self.root = _optuna_node(space, "")

    def __call__(self, trial: Any) -> None:
        _suggest(trial, self.root)


def _suggest(trial: Any, node: _Node) -> None:
    # Optuna loads only for an Optuna search.
    from optuna.distributions import FloatDistribution, IntDistribution

    for name, dist in node.distributions.items():
        if isinstance(dist, FloatDistribution):
            trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
        elif isinstance(dist, IntDistribution):
            trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            trial.suggest_categorical(name, dist.choices)
    for name, children in node.choices:
        index = trial.suggest_categorical(name, list(range(len(children))))
        _suggest(trial, children[index])


# Hyperopt ----------------------------------------------------------------------------


def hyperopt_space(space: Space, prefix: str = "") -> dict[str, Any]:
    """The space as a Hyperopt space: nested `hp.choice` whose options hold their branch.

    Unconditional parameters are Ray's own conversion (`HyperOptSearch.convert_search_space`,
    log-normal ones `tunefleet.search.hyperopt_search`'s).

    Args:
        space: The parsed space.
        prefix: Internal name of the branch this space belongs to ("" at the top).
    """
    # Hyperopt loads only for a Hyperopt search.
    from hyperopt import hp

    from tunefleet.search.hyperopt_search import convert_search_space

    domains, _ = _plain(space)
    tree: dict[str, Any] = convert_search_space(domains, prefix=prefix) if domains else {}
    for path, param in space.conditional.items():
        name = _name(prefix, path)
        options = []
        for index, (value, branch) in enumerate(zip(param.values, param.branches, strict=True)):
            option: dict[str, Any] = {BRANCH: index}
            sub = hyperopt_space(branch, _branch(name, value))
            if sub:
                option[_branch(name, value)] = sub
            options.append(option)
        set_path(tree, path, hp.choice(name, options))
    return tree


# Decoding ----------------------------------------------------------------------------


def _flat_internal(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A backend's suggestion as {internal name: value}."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and BRANCH in value:  # Hyperopt's drawn option
            flat[path] = value[BRANCH]
            flat.update(_flat_internal({k: v for k, v in value.items() if k != BRANCH}))
        elif isinstance(value, dict):
            flat.update(_flat_internal(value, path + "/"))
        else:
            flat[path] = value
    return flat


def _decode(
    flat: dict[str, Any], space: Space, prefix: str, group: str, out: dict[str, Any]
) -> None:
    for path, param in space.params.items():
        name, target = _name(prefix, path), f"{group}{path}"
        if isinstance(param, Const):
            if prefix:  # top-level constants come from the Tuner's param_space
                out[target] = copy.deepcopy(param.value)
        elif isinstance(param, Conditional):
            index = int(flat[name])
            value = param.values[index]
            out[target] = value
            branch_group = target.rpartition("/")[0]
            _decode(
                flat,
                param.branches[index],
                _branch(name, value),
                f"{branch_group}/" if branch_group else "",
                out,
            )
        elif isinstance(param, Choice):
            out[target] = copy.deepcopy(param.values[int(flat[name])])
        elif isinstance(param, Int):
            out[target] = round(float(flat[name]))
        elif isinstance(param, (Float, Normal)):
            out[target] = float(flat[name])


def decode(suggestion: dict[str, Any], space: Space) -> dict[str, Any]:
    """The nested trial config for a backend's suggestion (internal names, choice indices).

    Args:
        suggestion: What HyperOptSearch or OptunaSearch suggested for `hyperopt_space` or
            `DefineByRun` of `space`.
        space: The parsed space.
    """
    out: dict[str, Any] = {}
    _decode(_flat_internal(suggestion), space, "", "", out)
    return nest(out)


class ConditionalSearcher(DelegatingSearcher):
    """Wraps a searcher given `hyperopt_space` or `DefineByRun` of a space; decodes its
    suggestions into the spec's flat configs.

    Args:
        searcher: HyperOptSearch or OptunaSearch, built with the translated space.
        space: The parsed space.
    """

    def __init__(self, searcher: Searcher, space: Space) -> None:
        super().__init__(searcher)
        self.space = space

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        suggestion = self.searcher.suggest(trial_id)
        if not isinstance(suggestion, dict):
            return suggestion  # None or Searcher.FINISHED
        return decode(suggestion, self.space)
