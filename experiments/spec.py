"""The experiment spec: one YAML file, validated completely before Ray starts."""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator
from tunefleet.search import (
    AshaSettings,
    FifoSettings,
    SchedulerSettings,
    SearchSettings,
    Space,
    parse_space,
)
from tunefleet.trainables.resolve import IMPORT_PATH_PATTERN

__all__ = ["ExperimentSpec", "ResourcesSettings"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ResourcesSettings(BaseModel):
    """What one trial reserves.

    Attributes:
        cpu: CPUs per trial (also torch's thread count in the PyTorch wrapper).
        gpu: GPUs per trial (fractions share a GPU).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: float = Field(default=1, gt=0)
    gpu: float = Field(default=0, ge=0)


def _space(value: Any) -> Space:
    if isinstance(value, Space):
        return value
    return parse_space(value)


class ExperimentSpec(BaseModel):
    """A whole experiment.

    Attributes:
        name: The experiment's folder under the storage root.
        description: Free text, kept in the results' metadata.
        trainable: `package.module:object`: a function `train(config)`, a Trainable class,
            or a tunefleet wrapper such as `TorchTrainable`.
        metric: The reported metric the search optimizes.
        mode: `min` or `max`.
        space: Hyperparameters (see `tunefleet.search.space`).
        search: The searcher and trial budget.
        scheduler: `fifo` or an early-stopping scheduler.
        resources: CPUs and GPUs per trial.
        stop: Stop a trial when a reported value reaches a bound, e.g.
            `{training_iteration: 20}`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    description: str | None = None
    trainable: str = Field(pattern=IMPORT_PATH_PATTERN)
    metric: str = Field(min_length=1)
    mode: Literal["min", "max"]
    space: Annotated[Space, PlainValidator(_space)] = Field(default_factory=lambda: Space({}))
    search: SearchSettings = Field(default_factory=SearchSettings)
    scheduler: SchedulerSettings = Field(default_factory=FifoSettings)
    resources: ResourcesSettings = Field(default_factory=ResourcesSettings)
    stop: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_combination(self) -> ExperimentSpec:
        algorithm = self.search.algorithm
        grid = self.space.grid
        if grid and algorithm in ("hyperopt", "optuna"):
            first = next(iter(grid))
            raise ValueError(
                f"space.{first.replace('/', '.')}: `grid` values cannot be used with "
                f"search.algorithm '{algorithm}', which samples; use `choice` instead, or "
                "algorithm random or grid."
            )
        if algorithm == "grid":
            if not grid:
                raise ValueError(
                    "search.algorithm: 'grid' needs at least one `grid:` parameter in space; "
                    "write e.g. `lr: {grid: [0.01, 0.1]}`, or use algorithm random."
                )
            sampled = [k for k, p in self.space.searched.items() if k not in grid]
            if sampled:
                raise ValueError(
                    f"space.{sampled[0].replace('/', '.')}: search.algorithm 'grid' tries "
                    f"fixed values, but this parameter is a "
                    f"{self.space.params[sampled[0]].keyword} distribution; make it a `grid:` "
                    "list, or use algorithm random (which samples it on top of the grid)."
                )
        names = set(self.space.params)
        for i, point in enumerate(self.search.points_to_evaluate):
            for key in _flat_keys(point, names):
                if key not in names:
                    close = difflib.get_close_matches(key, names, n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else "."
                    raise ValueError(
                        f"search.points_to_evaluate[{i}].{key.replace('/', '.')}: not a "
                        f"parameter of space{hint}"
                    )
        if isinstance(self.scheduler, AshaSettings):
            attr = self.scheduler.time_attr
            if self.scheduler.max_t is None and attr not in self.stop:
                raise ValueError(
                    f"scheduler.max_t: ASHA needs a budget; set `scheduler.max_t` or `stop.{attr}`."
                )
        return self

    @property
    def scheduler_is_fifo(self) -> bool:
        return isinstance(self.scheduler, FifoSettings)


def _flat_keys(point: dict[str, Any], names: set[str], prefix: str = "") -> list[str]:
    """The parameter paths a point sets (`model/depth`); a mapping that is not itself a
    parameter is a group."""
    keys = []
    for key, value in point.items():
        path = f"{prefix}{key}"
        if path not in names and isinstance(value, dict) and value:
            keys.extend(_flat_keys(value, names, path + "/"))
        else:
            keys.append(path)
    return keys
