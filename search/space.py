"""The declarative search-space language of an experiment spec.

A space is a mapping from parameter names to either a constant or a one-key mapping that
names a distribution::

    lr: {loguniform: [1.0e-4, 1.0e-1]}
    hidden: {randint: [32, 256]}        # integer bounds are inclusive at both ends
    dropout: {normal: [0.3, 0.05]}      # [mu, sigma]: unbounded, centred on a known value
    optimizer: {choice: [adam, sgd]}
    model:                              # a nested group becomes config["model"][...]
      depth: {grid: [1, 2, 3]}
    epochs: 20                          # a constant

A `choice` written as a mapping is *conditional*: each key is a value of the choice, and its
mapping holds parameters that exist only when that value is drawn (`{}` or null: none)::

    optimizer:
      choice:
        sgd: {lr: {loguniform: [1.0e-4, 1.0e-1]}, momentum: {uniform: [0.0, 0.99]}}
        adam: {lr: {loguniform: [1.0e-4, 1.0e-2]}}
        rmsprop: {}

A trial's config stays flat: the branch's parameters sit beside the choice, in its group
(`{"optimizer": "sgd", "lr": 0.01, "momentum": 0.9}`), and parameters of the branches not
drawn are absent (not None). The same name may appear in several branches (`lr` above, each
with its own distribution); it may not also appear outside the choice. Branches may hold
groups and conditional choices of their own, but no `grid` values. Hyperopt gets nested
`hp.choice`, Optuna a define-by-run function, and random search Optuna's random sampler
(`tunefleet.search.conditional`); grid search and PBT/PB2 refuse conditional choices.

`normal`, `qnormal`, `lognormal` and `qlognormal` take `[mu, sigma]` (`[mu, sigma, q]`);
for the log-normal ones, mu and sigma are those of the value's logarithm (as in Hyperopt and
numpy). They have no bounds, so only searchers that sample such priors take them (random
search, Hyperopt, PBT; see `tunefleet.search.combinations`).

A one-key mapping whose value is a list is always read as a distribution (an unknown name is
an error); a group of constants is written with scalar values or with `const:`.

Parsing gives typed, immutable parameter objects (`Float`, `Int`, `Normal`, `Choice`,
`Conditional`, `Const`), in the manner of Optuna's distributions;
`tunefleet.search.tune_space` translates them to Ray Tune's domains. Nothing here imports Ray.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tunefleet.common.errors import TunefleetError

__all__ = [
    "DISTRIBUTIONS",
    "Choice",
    "Conditional",
    "Const",
    "Float",
    "Int",
    "Normal",
    "Param",
    "Space",
    "SpaceError",
    "parse_space",
]


class SpaceError(TunefleetError, ValueError):
    """A search space that cannot be used; the message names the parameter and the fix."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


@dataclass(frozen=True)
class Float:
    """A real-valued parameter in `[low, high]`, optionally log-scaled and/or quantized."""

    low: float
    high: float
    log: bool = False
    q: float | None = None

    @property
    def keyword(self) -> str:
        return ("q" if self.q is not None else "") + ("loguniform" if self.log else "uniform")

    def describe(self) -> str:
        q = f", step {self.q:g}" if self.q is not None else ""
        return f"{self.keyword}[{self.low:g}, {self.high:g}{q}]"


@dataclass(frozen=True)
class Int:
    """An integer parameter in `[low, high]`, both bounds inclusive."""

    low: int
    high: int
    log: bool = False
    q: int | None = None

    @property
    def keyword(self) -> str:
        if self.log:
            return "lograndint"
        return "qrandint" if self.q is not None else "randint"

    def describe(self) -> str:
        q = f", step {self.q}" if self.q is not None else ""
        return f"{self.keyword}[{self.low}, {self.high}{q}] (inclusive)"


@dataclass(frozen=True)
class Normal:
    """A real-valued parameter drawn from a normal distribution, with no bounds.

    With `log`, the value is log-normal: `exp(x)` for `x` drawn from N(mu, sigma²), so it is
    positive and `mu`, `sigma` are those of its logarithm. With `q`, the drawn value is
    rounded to a multiple of `q`.
    """

    mu: float
    sigma: float
    log: bool = False
    q: float | None = None

    @property
    def keyword(self) -> str:
        return ("q" if self.q is not None else "") + ("lognormal" if self.log else "normal")

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """The central interval holding 95% of the draws (before rounding to `q`)."""
        low, high = self.mu - z * self.sigma, self.mu + z * self.sigma
        return (math.exp(low), math.exp(high)) if self.log else (low, high)

    def describe(self) -> str:
        q = f", step {self.q:g}" if self.q is not None else ""
        low, high = self.interval()
        if self.log:
            shape = f"median {math.exp(self.mu):.4g}, 95% in [{low:.4g}, {high:.4g}], positive"
        else:
            shape = f"95% in [{low:.4g}, {high:.4g}], unbounded"
        return f"{self.keyword}[mu {self.mu:g}, sigma {self.sigma:g}{q}] ({shape})"


@dataclass(frozen=True)
class Choice:
    """One of a list of values, of any YAML type; `grid=True` means every value is tried."""

    values: tuple[Any, ...]
    grid: bool = False

    @property
    def keyword(self) -> str:
        return "grid" if self.grid else "choice"

    def describe(self) -> str:
        return f"{self.keyword}{list(self.values)!r}"


@dataclass(frozen=True)
class Conditional(Choice):
    """A choice whose values bring parameters of their own (`choice: {sgd: {...}, ...}`).

    Attributes:
        values: The values of the choice, in the order written.
        branches: For each value, the space of the parameters that exist only under it;
            their paths are relative to the group that holds the choice.
    """

    branches: tuple[Space, ...] = ()

    def describe(self) -> str:
        return f"choice{list(self.values)!r}, with parameters per value"


@dataclass(frozen=True)
class Const:
    """A fixed value, passed to every trial unchanged."""

    value: Any

    @property
    def keyword(self) -> str:
        return "const"

    def describe(self) -> str:
        return f"{self.value!r}"


Param = Float | Int | Normal | Choice | Const

# keyword -> (kind, log, quantized)
DISTRIBUTIONS: dict[str, tuple[str, bool, bool]] = {
    "uniform": ("float", False, False),
    "quniform": ("float", False, True),
    "loguniform": ("float", True, False),
    "qloguniform": ("float", True, True),
    "randint": ("int", False, False),
    "qrandint": ("int", False, True),
    "lograndint": ("int", True, False),
    "normal": ("normal", False, False),
    "qnormal": ("normal", False, True),
    "lognormal": ("normal", True, False),
    "qlognormal": ("normal", True, True),
    "choice": ("choice", False, False),
    "grid": ("grid", False, False),
    "const": ("const", False, False),
}


@dataclass(frozen=True)
class Space:
    """A parsed search space: flat parameter paths (`model/depth`) to typed parameters."""

    params: Mapping[str, Param]

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    @property
    def searched(self) -> dict[str, Param]:
        """The parameters that vary between trials (everything but constants)."""
        return {k: p for k, p in self.params.items() if not isinstance(p, Const)}

    @property
    def grid(self) -> dict[str, Choice]:
        """The parameters whose every value is tried (`grid:`)."""
        return {k: p for k, p in self.params.items() if isinstance(p, Choice) and p.grid}

    @property
    def conditional(self) -> dict[str, Conditional]:
        """The choices whose values bring parameters of their own."""
        return {k: p for k, p in self.params.items() if isinstance(p, Conditional)}

    def config_paths(self) -> list[str]:
        """Every flat config path a trial may receive, branch parameters included."""
        paths = list(self.params)
        for path, param in self.conditional.items():
            for branch in param.branches:
                paths += [_sibling(path, rel) for rel in branch.config_paths()]
        return list(dict.fromkeys(paths))

    def grid_size(self) -> int:
        """How many combinations the grid parameters make (1 when there are none)."""
        return math.prod(len(p.values) for p in self.grid.values())

    def describe(self) -> list[str]:
        """One line per parameter, for `tunefleet validate`."""
        width = max((len(k) for k in self.params), default=0)
        lines = []
        for k, p in self.params.items():
            lines.append(f"{k.ljust(width)}  {p.describe()}")
            if isinstance(p, Conditional):
                for value, branch in zip(p.values, p.branches, strict=True):
                    lines += [f"  if {k}={value}: {line}" for line in branch.describe()]
        return lines


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


def _sibling(choice_path: str, relative: str) -> str:
    """The config path of a branch parameter: in the group of its choice."""
    group = choice_path.rpartition("/")[0]
    return f"{group}/{relative}" if group else relative


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
                full = _sibling(path, rel)
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
            raise SpaceError(where, f"needs a non-empty list of values, got {_show(args)}.")
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
                f"{_show(raw)}; for a plain choice write a list: `choice: [a, b]`.",
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
        raise SpaceError(where, f"takes {usage}, got {_show(args)}.")
    return dict(zip(names, args, strict=True))


def _number(value: Any, name: str, where: str, *, integer: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise SpaceError(where, f"`{name}` must be {kind}, got {_show(value)}.")
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


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
