"""Typed settings of the `search:` and `scheduler:` sections of an experiment spec.

These are pydantic models (unknown keys forbidden, immutable) so that a spec is checked
completely before Ray starts; `tunefleet.search.algorithms` and
`tunefleet.search.schedulers` turn them into Ray Tune objects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "SCHEDULERS",
    "SEARCHERS",
    "AshaSettings",
    "FifoSettings",
    "SchedulerSettings",
    "SearchSettings",
]

SEARCHERS = ("random", "grid", "hyperopt", "optuna")
SCHEDULERS = ("fifo", "asha")
OPTUNA_SAMPLERS = ("tpe", "random")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SearchSettings(_Section):
    """How configurations are chosen.

    Attributes:
        algorithm: `random`, `grid` (Ray's variant generator), `hyperopt` (TPE) or `optuna`.
        sampler: The Optuna sampler (`tpe` by default); only with `algorithm: optuna`.
        num_samples: Trials to run; with grid parameters, times the grid is repeated.
            Defaults to 1 for `grid` and 10 otherwise.
        seed: Seeds the searcher so the same spec suggests the same configs.
        max_concurrent: At most this many trials run at once.
        n_initial_points: Random trials before TPE starts modelling (hyperopt, optuna tpe).
        points_to_evaluate: Configs tried first, e.g. a known-good baseline.
    """

    algorithm: Literal["random", "grid", "hyperopt", "optuna"] = "random"
    sampler: Literal["tpe", "random"] | None = None
    num_samples: int | None = Field(default=None, ge=1)
    seed: int | None = None
    max_concurrent: int | None = Field(default=None, ge=1)
    n_initial_points: int | None = Field(default=None, ge=1)
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> SearchSettings:
        if self.sampler is not None and self.algorithm != "optuna":
            raise ValueError(
                f"search.sampler: only `algorithm: optuna` takes a sampler, but algorithm is "
                f"'{self.algorithm}'; remove `sampler` or set `algorithm: optuna`."
            )
        if self.n_initial_points is not None and self.algorithm not in ("hyperopt", "optuna"):
            raise ValueError(
                "search.n_initial_points: only `hyperopt` and `optuna` model earlier trials; "
                f"remove it for '{self.algorithm}'."
            )
        return self

    @property
    def trials(self) -> int:
        """The resolved `num_samples`."""
        if self.num_samples is not None:
            return self.num_samples
        return 1 if self.algorithm == "grid" else 10

    @property
    def optuna_sampler(self) -> str:
        """The resolved Optuna sampler name."""
        return self.sampler or "tpe"


class FifoSettings(_Section):
    """Run every trial to its end (Ray's FIFO scheduler)."""

    name: Literal["fifo"] = "fifo"


class AshaSettings(_Section):
    """Asynchronous successive halving: stop the worst trials early.

    Attributes:
        time_attr: The result field that measures progress (`training_iteration`).
        max_t: The most `time_attr` a trial may use; defaults to `stop.training_iteration`.
        grace_period: No trial is stopped before this much `time_attr`.
        reduction_factor: Only the best 1/reduction_factor of trials go on at each rung.
        brackets: Number of brackets (1 is usual).
    """

    name: Literal["asha"]
    time_attr: str = "training_iteration"
    max_t: int | None = Field(default=None, ge=1)
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=4, gt=1)
    brackets: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check(self) -> AshaSettings:
        if self.max_t is not None and self.grace_period > self.max_t:
            raise ValueError(
                f"scheduler.grace_period: must be <= max_t, but got grace_period="
                f"{self.grace_period}, max_t={self.max_t}."
            )
        return self


SchedulerSettings = Annotated[FifoSettings | AshaSettings, Field(discriminator="name")]
