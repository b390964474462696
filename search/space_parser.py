"""Parsing the `space:` section of a spec into the typed parameters of
`tunefleet.search.space` (its docstring describes the language).

`parse_space` checks every parameter as it reads it: a malformed one raises `SpaceError`
naming the parameter's key path and what to write instead. Nothing here imports Ray.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from tunefleet.common.suggest import shown
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
    sibling_path,
)

__all__ = ["parse_space"]


def parse_space(raw: Any, *, root: str = "space") -> Space:
    """Parses the `space:` section of a spec.

    Args:
        raw: The mapping read from YAML.
        root: The key path used in error messages.

    Returns:
        The typed space.

    Raises:
        SpaceError: If a parameter is malformed; the message names it and says what to fix.
    """
    if raw is None:
        return Space({})
    if not isinstance(raw, Mapping):
        raise SpaceError(root, f"must be a mapping of parameter names, got {_type(raw)}.")
    params: dict[str, Param] = {}
    _parse_group(raw, root, (), params)
    space = Space(params)
    _check_branch_names(space, root)
    return space


def _overlap(a: str, b: str) -> bool:
    """Whether two config paths would collide (equal, or one is a group of the other)."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _check_branch_names(space: Space, root: str) -> None:
    """A branch parameter may share its name with other branches of its own choice (only
    one is drawn), but not with a parameter outside the choice or another choice's branch."""
    owners: dict[str, str] = {}  # config path of a branch parameter -> its choice's path
    for path, param in space.conditional.items():
        for value, branch in zip(param.values, param.branches, strict=True):
            for rel in branch.config_paths():
                full = sibling_path(path, rel)
                where = ".".join((root, *path.split("/"), "choice", str(value), *rel.split("/")))
                clash = next((u for u in space.params if _overlap(full, u)), None)
                if clash is not None:
                    raise SpaceError(
                        where,
                        f"'{full}' is also set outside the choice ({root}."
                        f"{clash.replace('/', '.')}), so a trial would get it twice; rename one.",
                    )
                other = next(
                    (o for f, o in owners.items() if o != path and _overlap(full, f)), None
                )
                if other is not None:
                    raise SpaceError(
                        where,
                        f"'{full}' is also a parameter of the choice {root}."
                        f"{other.replace('/', '.')}, and both may be drawn; rename one.",
                    )
                owners[full] = path


def _parse_group(
    raw: Mapping[Any, Any], root: str, prefix: tuple[str, ...], out: dict[str, Param]
) -> None:
    for key, value in raw.items():
        path = ".".join((root, *prefix, str(key)))
        if not isinstance(key, str) or not key or "/" in key or "." in key:
            raise SpaceError(path, "parameter names must be non-empty strings without '/' or '.'.")
        if isinstance(value, Mapping) and len(value) == 1:
            (keyword,) = value.keys()
            if keyword in DISTRIBUTIONS:
                out["/".join((*prefix, key))] = _parse_param(keyword, value[keyword], path)
                continue
            close = difflib.get_close_matches(str(keyword), DISTRIBUTIONS, n=1, cutoff=0.75)
            if close:
                raise SpaceError(
                    path,
                    f"'{keyword}' is not a distribution; did you mean '{close[0]}'? "
                    f"(write {{const: {{...}}}} for a constant mapping)",
                )
            if isinstance(value[keyword], list):
                # `{normal: [0.5, 0.1]}` with an unknown name reads like a distribution:
                # never let it pass as a nested constant.
                raise SpaceError(
                    path,
                    f"'{keyword}' is not a distribution; choose one of "
                    f"{', '.join(DISTRIBUTIONS)} (for a constant list in a group, write "
                    f"`{key}: {{const: {{{keyword}: [...]}}}}`).",
                )
        if isinstance(value, Mapping):
            if not value:
                raise SpaceError(path, "an empty mapping is neither a parameter nor a group.")
            named = [k for k, v in value.items() if _looks_like_distribution(k, v)]
            if named:
                # `x: {uniform: [0, 1], loguniform: [...]}` is not a group of constants.
                raise SpaceError(
                    path,
                    f"'{named[0]}' names a distribution, but sits beside other keys "
                    f"({', '.join(repr(k) for k in value if k != named[0])}); give a parameter "
                    f"one distribution, or write a constant as `{named[0]}: {{const: ...}}`.",
                )
            _parse_group(value, root, (*prefix, key), out)
        else:
            out["/".join((*prefix, key))] = Const(value)


def _looks_like_distribution(key: Any, value: Any) -> bool:
    """A key of a group named like a distribution, holding its arguments."""
    return key in DISTRIBUTIONS and key != "const" and isinstance(value, list)


def _parse_param(keyword: str, args: Any, path: str) -> Param:
    kind, log, quantized = DISTRIBUTIONS[keyword]
    where = f"{path}.{keyword}"
    if kind == "const":
        return Const(args)
    if kind == "choice" and isinstance(args, Mapping):
        return _parse_conditional(args, where)
    if kind in ("choice", "grid"):
        if not isinstance(args, list) or not args:
            raise SpaceError(where, f"needs a non-empty list of values, got {shown(args)}.")
        return Choice(tuple(args), grid=kind == "grid")
    if kind == "normal":
        names = ("mu", "sigma", "q") if quantized else ("mu", "sigma")
        return _normal_param(_bounds(args, names, keyword, where), log, where)
    names = ("low", "high", "q") if quantized else ("low", "high")
    bounds = _bounds(args, names, keyword, where)
    if kind == "float":
        return _float_param(bounds, log, where)
    return _int_param(bounds, log, where)


def _parse_conditional(args: Mapping[Any, Any], where: str) -> Conditional:
    if not args:
        raise SpaceError(where, "needs at least one value, got an empty mapping.")
    values, branches, names = [], [], set()
    for value, raw in args.items():
        here = f"{where}.{value}"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SpaceError(
                here, f"a value of a choice must be a string or number, got {value!r}."
            )
        if str(value) in names:
            raise SpaceError(here, f"the values {value!r} and '{value}' read the same; rename one.")
        names.add(str(value))
        if raw is not None and not isinstance(raw, Mapping):
            raise SpaceError(
                here,
                f"must map the parameters that exist under {value!r} (or be {{}}), got "
                f"{shown(raw)}; for a plain choice write a list: `choice: [a, b]`.",
            )
        branch = parse_space(raw, root=here)
        if branch.grid:
            grid_path = next(iter(branch.grid)).replace("/", ".")
            raise SpaceError(
                f"{here}.{grid_path}",
                "`grid` values cannot sit under a conditional choice; use `choice`.",
            )
        values.append(value)
        branches.append(branch)
    return Conditional(tuple(values), branches=tuple(branches))


def _bounds(args: Any, names: tuple[str, ...], keyword: str, where: str) -> dict[str, Any]:
    usage = f"[{', '.join(names)}]"
    if isinstance(args, Mapping):
        unknown = [k for k in args if k not in names]
        if unknown:
            raise SpaceError(where, f"unknown key '{unknown[0]}'; {keyword} takes {usage}.")
        missing = [n for n in names if n not in args]
        if missing:
            raise SpaceError(where, f"missing '{missing[0]}'; {keyword} takes {usage}.")
        return dict(args)
    if not isinstance(args, list) or len(args) != len(names):
        raise SpaceError(where, f"takes {usage}, got {shown(args)}.")
    return dict(zip(names, args, strict=True))


def _number(value: Any, name: str, where: str, *, integer: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise SpaceError(where, f"`{name}` must be {kind}, got {shown(value)}.")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise SpaceError(where, f"`{name}` must be an integer, got {value!r}.")
    if not math.isfinite(value):
        raise SpaceError(where, f"`{name}` must be finite, got {value!r}.")
    return int(value) if integer else float(value)


def _float_param(b: dict[str, Any], log: bool, where: str) -> Float:
    low = _number(b["low"], "low", where, integer=False)
    high = _number(b["high"], "high", where, integer=False)
    if not low < high:
        raise SpaceError(where, f"`low < high` must hold, but got low={low:g}, high={high:g}.")
    if log and low <= 0:
        raise SpaceError(where, f"a log scale needs `low > 0`, but got low={low:g}.")
    q = None
    if "q" in b:
        q = _number(b["q"], "q", where, integer=False)
        if q <= 0:
            raise SpaceError(where, f"the step `q` must be > 0, got {q:g}.")
        for name, v in (("low", low), ("high", high)):
            if not _is_multiple(v, q):
                raise SpaceError(
                    where,
                    f"`{name}` must be a multiple of q={q:g} (got {v:g}), so every backend "
                    "samples the same grid.",
                )
    return Float(low, high, log=log, q=q)


def _int_param(b: dict[str, Any], log: bool, where: str) -> Int:
    low = _number(b["low"], "low", where, integer=True)
    high = _number(b["high"], "high", where, integer=True)
    if not low < high:
        raise SpaceError(where, f"`low < high` must hold, but got low={low}, high={high}.")
    if log and low < 1:
        raise SpaceError(where, f"a log scale needs `low >= 1`, but got low={low}.")
    q = None
    if "q" in b:
        q = _number(b["q"], "q", where, integer=True)
        if q < 1:
            raise SpaceError(where, f"the step `q` must be a positive integer, got {q}.")
        if low % q or high % q:
            raise SpaceError(
                where, f"`low` and `high` must be multiples of q={q}, got low={low}, high={high}."
            )
    return Int(low, high, log=log, q=q)


# exp() of more than this overflows a float; a log-normal must stay well below it.
_MAX_LOG = math.log(1e300)


def _normal_param(b: dict[str, Any], log: bool, where: str) -> Normal:
    mu = _number(b["mu"], "mu", where, integer=False)
    sigma = _number(b["sigma"], "sigma", where, integer=False)
    if sigma <= 0:
        raise SpaceError(where, f"the spread `sigma` must be > 0, got {sigma:g}.")
    if log and abs(mu) + 10 * sigma > _MAX_LOG:
        raise SpaceError(
            where,
            f"mu and sigma are those of the value's logarithm, and exp(mu +/- 10 sigma) would "
            f"overflow with mu={mu:g}, sigma={sigma:g}; give log-scale values (e.g. mu=-6.9 "
            "for a median of 0.001).",
        )
    q = None
    if "q" in b:
        q = _number(b["q"], "q", where, integer=False)
        if q <= 0:
            raise SpaceError(where, f"the step `q` must be > 0, got {q:g}.")
    return Normal(mu, sigma, log=log, q=q)


def _is_multiple(value: float, q: float) -> bool:
    ratio = value / q
    return math.isclose(ratio, round(ratio), rel_tol=0, abs_tol=1e-9)


def _type(value: Any) -> str:
    return type(value).__name__
