"""The declarative search-space language of an experiment spec.

A space is a mapping from parameter names to either a constant or a one-key mapping that
names a distribution::

    lr: {loguniform: [1.0e-4, 1.0e-1]}
    hidden: {randint: [32, 256]}        # integer bounds are inclusive at both ends
    optimizer: {choice: [adam, sgd]}
    model:                              # a nested group becomes config["model"][...]
      depth: {grid: [1, 2, 3]}
    epochs: 20                          # a constant

Parsing gives typed, immutable parameter objects (`Float`, `Int`, `Choice`, `Const`), in the
manner of Optuna's distributions; `tunefleet.search.tune_space` translates them to Ray Tune's
domains. Nothing here imports Ray.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DISTRIBUTIONS",
    "Choice",
    "Const",
    "Float",
    "Int",
    "Param",
    "Space",
    "SpaceError",
    "parse_space",
]


class SpaceError(ValueError):
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
class Const:
    """A fixed value, passed to every trial unchanged."""

    value: Any

    @property
    def keyword(self) -> str:
        return "const"

    def describe(self) -> str:
        return f"{self.value!r}"


Param = Float | Int | Choice | Const

# keyword -> (kind, log, quantized)
DISTRIBUTIONS: dict[str, tuple[str, bool, bool]] = {
    "uniform": ("float", False, False),
    "quniform": ("float", False, True),
    "loguniform": ("float", True, False),
    "qloguniform": ("float", True, True),
    "randint": ("int", False, False),
    "qrandint": ("int", False, True),
    "lograndint": ("int", True, False),
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

    def grid_size(self) -> int:
        """How many combinations the grid parameters make (1 when there are none)."""
        return math.prod(len(p.values) for p in self.grid.values())

    def describe(self) -> list[str]:
        """One line per parameter, for `tunefleet validate`."""
        width = max((len(k) for k in self.params), default=0)
        return [f"{k.ljust(width)}  {p.describe()}" for k, p in self.params.items()]


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
    return Space(params)


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
        if isinstance(value, Mapping):
            if not value:
                raise SpaceError(path, "an empty mapping is neither a parameter nor a group.")
            _parse_group(value, root, (*prefix, key), out)
        else:
            out["/".join((*prefix, key))] = Const(value)


def _parse_param(keyword: str, args: Any, path: str) -> Param:
    kind, log, quantized = DISTRIBUTIONS[keyword]
    where = f"{path}.{keyword}"
    if kind == "const":
        return Const(args)
    if kind in ("choice", "grid"):
        if not isinstance(args, list) or not args:
            raise SpaceError(where, f"needs a non-empty list of values, got {_show(args)}.")
        return Choice(tuple(args), grid=kind == "grid")
    names = ("low", "high", "q") if quantized else ("low", "high")
    bounds = _bounds(args, names, keyword, where)
    if kind == "float":
        return _float_param(bounds, log, where)
    return _int_param(bounds, log, where)


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


def _is_multiple(value: float, q: float) -> bool:
    ratio = value / q
    return math.isclose(ratio, round(ratio), rel_tol=0, abs_tol=1e-9)


def _type(value: Any) -> str:
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
