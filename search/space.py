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

This module holds the typed, immutable parameter objects (`Float`, `Int`, `Normal`,
`Choice`, `Conditional`, `Const`), in the manner of Optuna's distributions, and the `Space`
of them; `tunefleet.search.space_parser.parse_space` reads a spec's mapping into them and
`tunefleet.search.tune_space` translates them to Ray Tune's domains. Nothing here imports Ray.
"""

from __future__ import annotations

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
    "sibling_path",
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
                paths += [sibling_path(path, rel) for rel in branch.config_paths()]
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


def sibling_path(choice_path: str, relative: str) -> str:
    """The config path of a branch parameter: in the group of its choice."""
    group = choice_path.rpartition("/")[0]
    return f"{group}/{relative}" if group else relative
