"""Typed settings of the `search:` section of an experiment spec.

These are pydantic models (unknown keys forbidden, immutable) so that a spec is checked
completely before Ray starts; `tunefleet.search.algorithms` turns them into Ray Tune objects.

    search:
      algorithm: optuna
      sampler: {name: nsga2, population_size: 20}    # or just `sampler: tpe`
      num_samples: 50
      seed: 0
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from tunefleet.common.sections import Section

__all__ = [
    "OPTUNA_SAMPLERS",
    "SEARCHERS",
    "CmaEsSettings",
    "GPSettings",
    "NSGA2Settings",
    "PBTSettings",
    "QMCSettings",
    "RandomSamplerSettings",
    "SamplerSettings",
    "SearchSettings",
    "TPESettings",
]

SEARCHERS = ("random", "grid", "hyperopt", "optuna", "pbt", "pb2")
OPTUNA_SAMPLERS = ("tpe", "cmaes", "gp", "nsga2", "qmc", "random")
POPULATION_BASED = ("pbt", "pb2")


class TPESettings(Section):
    """Optuna's Tree-structured Parzen Estimator (the default sampler).

    Attributes:
        multivariate: Model parameters jointly rather than one by one. On by default: on
            Hartmann6 (100 trials, 5 seeds) it gave a median regret of 0.17 against 0.22
            for independent TPE, and 0.019 against 0.043 on Branin.
        constant_liar: Count trials still running as bad results, so that parallel
            trials are not suggested near-duplicates of each other. Default: on when more
            than one trial runs at once (`tunefleet.experiments.spec.slots`).
        n_ei_candidates: Candidates scored per suggestion.
    """

    name: Literal["tpe"] = "tpe"
    multivariate: bool = True
    constant_liar: bool | None = None
    n_ei_candidates: int = Field(default=24, ge=1)


class CmaEsSettings(Section):
    """Optuna's CMA-ES: continuous and integer spaces of two or more dimensions.

    Attributes:
        sigma0: Initial step size (default: a sixth of each range).
        restart_strategy: `ipop` or `bipop` restarts with a growing population.
        popsize: Population size (default from the dimension).
    """

    name: Literal["cmaes"]
    sigma0: float | None = Field(default=None, gt=0)
    restart_strategy: Literal["ipop", "bipop"] | None = None
    popsize: int | None = Field(default=None, ge=2)


class GPSettings(Section):
    """Optuna's Gaussian-process Bayesian optimization (for small budgets).

    Attributes:
        deterministic_objective: The metric has no noise (same config, same value).
    """

    name: Literal["gp"]
    deterministic_objective: bool = False


class NSGA2Settings(Section):
    """Optuna's NSGA-II evolutionary sampler (single- or multi-objective).

    Attributes:
        population_size: Trials per generation.
        mutation_prob: Per-parameter mutation probability (default 1/number of parameters).
        crossover_prob: Probability that a child is a crossover of two parents.
    """

    name: Literal["nsga2"]
    population_size: int = Field(default=50, ge=2)
    mutation_prob: float | None = Field(default=None, ge=0, le=1)
    crossover_prob: float = Field(default=0.9, ge=0, le=1)


class QMCSettings(Section):
    """Optuna's quasi-Monte Carlo sampler: low-discrepancy points that cover the space evenly.

    Attributes:
        qmc_type: `sobol` or `halton`.
        scramble: Randomize the sequence (seeded by `search.seed`).
    """

    name: Literal["qmc"]
    qmc_type: Literal["sobol", "halton"] = "sobol"
    scramble: bool = True


class RandomSamplerSettings(Section):
    """Optuna's random sampler."""

    name: Literal["random"]


def _sampler_shorthand(value: Any) -> Any:
    """`sampler: tpe` is short for `sampler: {name: tpe}`."""
    return {"name": value} if isinstance(value, str) else value


_Samplers = (
    TPESettings | CmaEsSettings | GPSettings | NSGA2Settings | QMCSettings | RandomSamplerSettings
)
SamplerSettings = Annotated[
    _Samplers,
    Field(discriminator="name"),
    BeforeValidator(
        _sampler_shorthand,
        # The spec's JSON Schema takes the shorthand too.
        json_schema_input_type=Literal["tpe", "cmaes", "gp", "nsga2", "qmc", "random"] | _Samplers,
    ),
]


class PBTSettings(Section):
    """Population Based Training (`pbt`) and its Gaussian-process variant (`pb2`).

    Every `perturbation_interval` units of `time_attr`, trials in the bottom
    `quantile_fraction` copy the checkpoint and config of a top trial and explore around it.
    The mutated parameters are the space's searched parameters (PB2: numeric ones only).

    Attributes:
        time_attr: Progress measure (`training_iteration` counts reported results).
        perturbation_interval: How often trials are compared (the trainable must checkpoint
            at least this often; tunefleet's wrappers do).
        quantile_fraction: Fraction of trials that exploit / are exploited.
        resample_probability: PBT: chance of resampling a parameter from its distribution
            instead of perturbing it.
        burn_in_period: PBT: no perturbation before this much `time_attr`.
        synch: Compare trials only when all have reached the same perturbation boundary.
            On by default: asynchronously, a running trial is ranked against paused trials'
            older results, and when the population outnumbers the free CPUs it can keep
            copying the same paused trial's checkpoint without progressing (seen here: 4
            trials on 2 CPUs made over 100 exploits at one iteration).
    """

    time_attr: Literal["training_iteration", "time_total_s"] = "training_iteration"
    perturbation_interval: float = Field(default=4, gt=0)
    quantile_fraction: float = Field(default=0.25, gt=0, le=0.5)
    resample_probability: float = Field(default=0.25, ge=0, le=1)
    burn_in_period: float = Field(default=0, ge=0)
    synch: bool = True


class SearchSettings(Section):
    """How configurations are chosen.

    Attributes:
        algorithm: `random`, `grid` (Ray's variant generator), `hyperopt` (TPE), `optuna`,
            `pbt` or `pb2` (population-based training; these replace the scheduler).
        sampler: The Optuna sampler and its options (`tpe` by default); `algorithm: optuna`
            only.
        num_samples: Trials to run; with grid parameters, times the grid is repeated; for PBT,
            the population size. Defaults to 1 for `grid` and 10 otherwise.
        seed: Seeds the searcher so the same spec suggests the same configs (PBT's
            perturbations cannot be seeded in Ray: they are not reproducible).
        max_concurrent: At most this many trials run at once.
        n_initial_points: Random trials before a model-based searcher starts modelling
            (hyperopt; optuna tpe, cmaes and gp).
        points_to_evaluate: Configs tried first, e.g. a known-good baseline.
        repeat: Evaluate each config this many times (the trial's `seed` differs) and report
            the mean to the searcher.
        time_budget_s: End the search after this many seconds (results are kept).
        budget_cpu_hours: End the search once the trials' summed running time times their
            CPUs reaches this many CPU-hours (see `tunefleet.search.budget`).
        budget_gpu_hours: The same for GPU-hours (trials reserving no GPU never spend any).
        pbt: Options of `pbt` / `pb2`.
    """

    algorithm: Literal["random", "grid", "hyperopt", "optuna", "pbt", "pb2"] = "random"
    sampler: SamplerSettings | None = None
    num_samples: int | None = Field(default=None, ge=1)
    seed: int | None = None
    max_concurrent: int | None = Field(default=None, ge=1)
    n_initial_points: int | None = Field(default=None, ge=1)
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)
    repeat: int = Field(default=1, ge=1)
    time_budget_s: float | None = Field(default=None, gt=0)
    budget_cpu_hours: float | None = Field(default=None, gt=0)
    budget_gpu_hours: float | None = Field(default=None, gt=0)
    pbt: PBTSettings | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchSettings:
        algorithm = self.algorithm
        if self.sampler is not None and algorithm != "optuna":
            raise ValueError(
                f"search.sampler: only `algorithm: optuna` takes a sampler, but algorithm is "
                f"'{algorithm}'; remove `sampler` or set `algorithm: optuna`."
            )
        if self.n_initial_points is not None:
            modelled = algorithm == "hyperopt" or (
                algorithm == "optuna" and self.optuna_sampler in ("tpe", "cmaes", "gp")
            )
            if not modelled:
                raise ValueError(
                    "search.n_initial_points: only hyperopt and optuna's tpe, cmaes and gp "
                    f"samplers model earlier trials; remove it for '{self.describe_algorithm}'."
                )
        if self.pbt is not None and algorithm not in POPULATION_BASED:
            raise ValueError(
                f"search.pbt: options for population-based training, but algorithm is "
                f"'{algorithm}'; set `algorithm: pbt` (or pb2) or remove `pbt`."
            )
        if algorithm in POPULATION_BASED:
            if self.points_to_evaluate:
                raise ValueError(
                    f"search.points_to_evaluate: {algorithm} starts from random configs and "
                    "has no searcher to warm-start; remove points_to_evaluate."
                )
            if self.repeat > 1:
                raise ValueError(
                    f"search.repeat: {algorithm} trials exchange checkpoints, so repeated "
                    "evaluation does not apply; remove `repeat`."
                )
        return self

    @property
    def trials(self) -> int:
        """The resolved `num_samples`."""
        if self.num_samples is not None:
            return self.num_samples
        if self.algorithm == "grid":
            return 1
        return 8 if self.algorithm in POPULATION_BASED else 10

    @property
    def optuna_sampler(self) -> str:
        """The resolved Optuna sampler name."""
        return self.sampler.name if self.sampler is not None else "tpe"

    @property
    def population_based(self) -> bool:
        return self.algorithm in POPULATION_BASED

    @property
    def pbt_settings(self) -> PBTSettings:
        return self.pbt or PBTSettings()

    @property
    def describe_algorithm(self) -> str:
        if self.algorithm == "optuna":
            return f"optuna {self.optuna_sampler}"
        return self.algorithm
